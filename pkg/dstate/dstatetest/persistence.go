package dstatetest

import (
	"context"
	"errors"
	"sync"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// InMemoryPersistence keeps the last saved object in memory. It survives an
// engine or node restart within one process when the same value is reused.
// Safe for concurrent use.
type InMemoryPersistence[S any] struct {
	mu     sync.Mutex
	obj    *dstate.StateObject[S]
	saves  int
	failOn func(*dstate.StateObject[S]) error
}

var _ dstate.StatePersistence[int] = (*InMemoryPersistence[int])(nil)

// NewInMemoryPersistence returns an empty store.
func NewInMemoryPersistence[S any]() *InMemoryPersistence[S] { return &InMemoryPersistence[S]{} }

// Save stores a copy of the envelope (the value is copied shallowly: states
// holding maps or slices must not be mutated in place after saving, or the
// test must use encoded states).
func (p *InMemoryPersistence[S]) Save(_ context.Context, obj *dstate.StateObject[S], _ []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failOn != nil {
		if err := p.failOn(obj); err != nil {
			return err
		}
	}
	c := *obj
	p.obj = &c
	p.saves++
	return nil
}

// Load returns a copy of the last saved object or nil.
func (p *InMemoryPersistence[S]) Load(context.Context) (*dstate.StateObject[S], error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.obj == nil {
		return nil, nil
	}
	c := *p.obj
	return &c, nil
}

// Saves returns how many saves succeeded.
func (p *InMemoryPersistence[S]) Saves() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.saves
}

// Stored returns the last saved object or nil.
func (p *InMemoryPersistence[S]) Stored() *dstate.StateObject[S] {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.obj == nil {
		return nil
	}
	c := *p.obj
	return &c
}

// Put replaces the stored object (for restart scenarios).
func (p *InMemoryPersistence[S]) Put(obj *dstate.StateObject[S]) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.obj = obj
}

// FailWhen makes Save fail with the error fn returns (nil: succeed). Pass
// nil to clear.
func (p *InMemoryPersistence[S]) FailWhen(fn func(*dstate.StateObject[S]) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failOn = fn
}

// FailingPersistence fails every call with ErrStorageUnavailable.
type FailingPersistence[S any] struct{}

var _ dstate.StatePersistence[int] = FailingPersistence[int]{}

// ErrInjected is the cause carried by FailingPersistence's errors.
var ErrInjected = errors.New("dstatetest: injected failure")

// Save always fails.
func (FailingPersistence[S]) Save(context.Context, *dstate.StateObject[S], []byte) error {
	return &dstate.PersistError{Kind: dstate.ErrStorageUnavailable, Op: "save", Err: ErrInjected}
}

// Load always fails.
func (FailingPersistence[S]) Load(context.Context) (*dstate.StateObject[S], error) {
	return nil, &dstate.PersistError{Kind: dstate.ErrStorageUnavailable, Op: "load", Err: ErrInjected}
}
