package dstate

import (
	"fmt"
	"reflect"
	"slices"
)

// StateShard is the type-erased face of one registered state that the
// registry needs: its name and its reactions to membership changes. Hosts
// implement it for their per-state handles (typically by forwarding to the
// state's actor, so the calls never block).
type StateShard interface {
	StateName() string
	OnNodeJoined(node NodeID)
	OnNodeLeft(node NodeID)
}

// StateRegistry holds a node's registered states by name. It is not safe for
// concurrent use; hosts guard it.
type StateRegistry struct {
	shards map[string]StateShard
}

// NewStateRegistry returns an empty registry.
func NewStateRegistry() *StateRegistry { return &StateRegistry{shards: make(map[string]StateShard)} }

// Register adds a shard; a taken name is a *RegistryError (ErrDuplicateName).
func (r *StateRegistry) Register(s StateShard) error {
	name := s.StateName()
	if _, ok := r.shards[name]; ok {
		return &RegistryError{Kind: ErrDuplicateName, Name: name}
	}
	r.shards[name] = s
	return nil
}

// Lookup returns the shard of a name, or a *RegistryError
// (ErrStateNotRegistered).
func (r *StateRegistry) Lookup(name string) (StateShard, error) {
	s, ok := r.shards[name]
	if !ok {
		return nil, &RegistryError{Kind: ErrStateNotRegistered, Name: name}
	}
	return s, nil
}

// LookupAs returns the shard of a name as type T, or a *RegistryError
// (ErrStateNotRegistered or ErrTypeMismatch naming both types).
func LookupAs[T StateShard](r *StateRegistry, name string) (T, error) {
	var zero T
	s, err := r.Lookup(name)
	if err != nil {
		return zero, err
	}
	t, ok := s.(T)
	if !ok {
		return zero, &RegistryError{Kind: ErrTypeMismatch, Name: name,
			Expected: reflect.TypeFor[T]().String(), Actual: fmt.Sprintf("%T", s)}
	}
	return t, nil
}

// Names returns the registered state names, sorted.
func (r *StateRegistry) Names() []string {
	names := make([]string, 0, len(r.shards))
	for n := range r.shards {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Len returns the number of registered states.
func (r *StateRegistry) Len() int { return len(r.shards) }

// NodeJoined tells every registered state that a node joined.
func (r *StateRegistry) NodeJoined(node NodeID) {
	for _, n := range r.Names() {
		r.shards[n].OnNodeJoined(node)
	}
}

// NodeLeft tells every registered state that a node left.
func (r *StateRegistry) NodeLeft(node NodeID) {
	for _, n := range r.Names() {
		r.shards[n].OnNodeLeft(node)
	}
}
