package replicated

import (
	"context"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// Set defines a replicated set state: every node owns a set of T, held as
// a MapValue[T, struct{}]; adds and removes replicate as per-element
// deltas. It is a [Map] from T to struct{}, and its fields are Map's.
type Set[T comparable] struct {
	Map[T, struct{}]
}

// SetShard is the typed handle of a registered [Set]. Its methods are safe
// for concurrent use.
type SetShard[T comparable] struct {
	m *MapShard[T, struct{}]
}

// RegisterSet registers def on n and returns its handle; see
// [RegisterMap].
func RegisterSet[T comparable](ctx context.Context, n *node.Node, def Set[T], opts node.StateOptions[MapValue[T, struct{}]]) (*SetShard[T], error) {
	m, err := RegisterMap(ctx, n, def.Map, opts)
	if err != nil {
		return nil, err
	}
	return &SetShard[T]{m}, nil
}

// NewSetShard returns the handle of a Set registered otherwise.
func NewSetShard[T comparable](s *node.DeltaShard[MapValue[T, struct{}], MapValue[T, struct{}], MapChange[T, struct{}], MapChange[T, struct{}]]) *SetShard[T] {
	return &SetShard[T]{NewMapShard(s)}
}

// Map returns the handle of the underlying map (its Shard, views, All).
func (s *SetShard[T]) Map() *MapShard[T, struct{}] { return s.m }

// Add adds x to this node's set and replicates the change.
func (s *SetShard[T]) Add(ctx context.Context, x T) (dstate.Generation, error) {
	return s.m.Set(ctx, x, struct{}{})
}

// Remove removes x from this node's set and replicates the change.
func (s *SetShard[T]) Remove(ctx context.Context, x T) (dstate.Generation, error) {
	return s.m.Delete(ctx, x)
}

// Has reports whether node id's set holds x, as this node knows it.
func (s *SetShard[T]) Has(id dstate.NodeID, x T) bool {
	_, ok := s.m.Get(id, x)
	return ok
}

// Len returns the size of node id's set.
func (s *SetShard[T]) Len(id dstate.NodeID) int { return s.m.Len(id) }

// Elements returns the elements of node id's set, in an unspecified order.
func (s *SetShard[T]) Elements(id dstate.NodeID) []T {
	v, _ := s.m.View(id)
	out := make([]T, 0, v.Len())
	for x := range v.All() {
		out = append(out, x)
	}
	return out
}
