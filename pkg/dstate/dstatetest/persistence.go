package dstatetest

import (
	"context"
	"errors"
	"fmt"
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

// EnvelopeStore is an in-memory dstate.EnvelopeStore shared by any number
// of nodes and states; it fences (refuses) a save whose generation is not
// newer than the stored one, as durable backends do.
type EnvelopeStore struct {
	mu   sync.Mutex
	envs map[string]dstate.StoredEnvelope
}

// NewEnvelopeStore returns an empty store.
func NewEnvelopeStore() *EnvelopeStore {
	return &EnvelopeStore{envs: make(map[string]dstate.StoredEnvelope)}
}

func envKey(state string, node dstate.NodeID) string { return state + "\x00" + string(node) }

// SaveEnvelope implements dstate.EnvelopeStore.
func (s *EnvelopeStore) SaveEnvelope(_ context.Context, env dstate.StoredEnvelope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := envKey(env.State, env.Node)
	if old, ok := s.envs[k]; ok && !old.Generation.Less(env.Generation) {
		return &dstate.PersistError{Kind: dstate.ErrStorageUnavailable, Op: "save",
			Err: fmt.Errorf("generation %s is not newer than the stored %s", env.Generation, old.Generation), Stored: old.Generation}
	}
	env.Data = append([]byte(nil), env.Data...)
	s.envs[k] = env
	return nil
}

// LoadEnvelope implements dstate.EnvelopeStore.
func (s *EnvelopeStore) LoadEnvelope(_ context.Context, state string, node dstate.NodeID) (*dstate.StoredEnvelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok := s.envs[envKey(state, node)]
	if !ok {
		return nil, nil
	}
	return &env, nil
}

// LoadAllEnvelopes implements dstate.EnvelopeReader: the store stands for a
// store shared by the cluster.
func (s *EnvelopeStore) LoadAllEnvelopes(_ context.Context, state string) ([]dstate.StoredEnvelope, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []dstate.StoredEnvelope
	for _, env := range s.envs {
		if env.State == state {
			out = append(out, env)
		}
	}
	return out, nil
}
