package actorkit

import (
	"fmt"
	"sync"
)

// Names is a runtime's table of its running actors by name. A name is
// taken from the moment Add starts its actor until Remove, which the
// runtime calls when the actor stops, so that the name can be spawned again
// at once.
type Names[A Actor] struct {
	errClosed, errDuplicate error

	mu     sync.Mutex
	closed bool
	byName map[string]A
}

// NewNames returns an empty table. Add wraps errClosed (after Close) and
// errDuplicate (for a name in use), the runtime's sentinels such as
// gosched.ErrClosed and gosched.ErrDuplicateActor.
func NewNames[A Actor](errClosed, errDuplicate error) *Names[A] {
	return &Names[A]{errClosed: errClosed, errDuplicate: errDuplicate, byName: make(map[string]A)}
}

// Add calls start to create and start the actor called name and records
// it. It fails without calling start after Close or if a running actor has
// the name, and with start's error if start fails. start runs under the
// table's lock, so Close cannot miss an actor being started; it must not
// call back into the table.
func (n *Names[A]) Add(name string, start func() (A, error)) (A, error) {
	var zero A
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return zero, fmt.Errorf("%w: spawn %q", n.errClosed, name)
	}
	if _, ok := n.byName[name]; ok {
		return zero, fmt.Errorf("%w: %q", n.errDuplicate, name)
	}
	a, err := start()
	if err != nil {
		return zero, err
	}
	n.byName[name] = a
	return a, nil
}

// Remove frees a's name, if a still holds it. It is idempotent.
func (n *Names[A]) Remove(a A) {
	name := a.Name()
	n.mu.Lock()
	if cur, ok := n.byName[name]; ok && cur == a {
		delete(n.byName, name)
	}
	n.mu.Unlock()
}

// Close makes every later Add fail and returns the actors running now, in
// no particular order, for the runtime to stop. A second Close returns the
// actors still recorded.
func (n *Names[A]) Close() []A {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	out := make([]A, 0, len(n.byName))
	for _, a := range n.byName {
		out = append(out, a)
	}
	return out
}
