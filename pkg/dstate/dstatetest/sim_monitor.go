package dstatetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Errors of the GenerationMonitor.
var (
	// ErrGenerationRegressed: a view's generation went backwards.
	ErrGenerationRegressed = errors.New("dstatetest: view generation went backwards")
	// ErrViewLost: a running node lost its view of a node that did not
	// leave.
	ErrViewLost = errors.New("dstatetest: view lost")
)

// GenerationMonitor checks the protocol's monotonicity invariant on a
// [SimCluster]: no view held by a running node ever moves to a lower
// generation, and no view disappears while its owner is a member: a view
// may be dropped only when its owner leaves. The views of an observer that
// crashed or restarted are forgotten, since its memory is new. (A
// DropAndWait version mismatch also drops views; the monitor reports that
// as ErrViewLost.)
type GenerationMonitor struct {
	last map[monitorKey]monitorEntry
	seen map[monitorKey]struct{}
}

type monitorKey struct {
	state           string
	observer, owner dstate.NodeID
}

type monitorEntry struct {
	epoch int
	gen   dstate.Generation
}

// NewGenerationMonitor returns a monitor that has seen nothing.
func NewGenerationMonitor() *GenerationMonitor {
	return &GenerationMonitor{last: make(map[monitorKey]monitorEntry), seen: make(map[monitorKey]struct{})}
}

// Check reads every view of c and returns an error wrapping
// ErrGenerationRegressed for the first one whose generation is lower than
// when Check last saw it. Call it after every step and every operation.
func (m *GenerationMonitor) Check(c *SimCluster) error {
	clear(m.seen)
	var err error
	c.EachView(func(v SimView) {
		k := monitorKey{v.State, v.Observer, v.Owner}
		m.seen[k] = struct{}{}
		epoch := c.Epoch(v.Observer)
		if prev, ok := m.last[k]; ok && prev.epoch == epoch && v.Generation.Less(prev.gen) && err == nil {
			err = fmt.Errorf("%w: at tick %d %s's view of %s@%s moved from %s to %s",
				ErrGenerationRegressed, c.Tick(), v.Observer, v.State, v.Owner, prev.gen, v.Generation)
		}
		m.last[k] = monitorEntry{epoch: epoch, gen: v.Generation}
	})
	var gone []monitorKey
	for k := range m.last {
		if _, ok := m.seen[k]; !ok {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, func(a, b monitorKey) int {
		return cmp.Or(cmp.Compare(a.state, b.state), cmp.Compare(a.observer, b.observer), cmp.Compare(a.owner, b.owner))
	})
	for _, k := range gone {
		prev := m.last[k]
		delete(m.last, k)
		lost := c.Status(k.observer) == SimUp && c.Epoch(k.observer) == prev.epoch && c.Status(k.owner) != SimLeft
		if lost && err == nil {
			err = fmt.Errorf("%w: at tick %d %s no longer holds a %s view of member %s (was at %s)",
				ErrViewLost, c.Tick(), k.observer, k.state, k.owner, prev.gen)
		}
	}
	return err
}
