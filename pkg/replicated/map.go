package replicated

import (
	"context"
	"fmt"
	"iter"

	"github.com/dstate-go/dstate/pkg/codec"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// MapChange is one write to a [Map]: Key set to Value, or deleted. It is
// also the replicated delta.
type MapChange[K comparable, V any] struct {
	Key    K    `json:"k" cbor:"1,keyasint"`
	Value  V    `json:"v,omitempty" cbor:"2,keyasint,omitempty"`
	Delete bool `json:"d,omitempty" cbor:"3,keyasint,omitempty"`
}

// MapCodec is how a [Map] encodes its entries (views, and the owned value
// on disk) and its changes (deltas).
type MapCodec[K comparable, V any] struct {
	Entries codec.Codec[map[K]V]
	Change  codec.Codec[MapChange[K, V]]
}

// CBORMap is the default codec of a Map: CBOR (see codec.CBOR).
func CBORMap[K comparable, V any]() MapCodec[K, V] {
	return MapCodec[K, V]{Entries: codec.CBOR[map[K]V](), Change: codec.CBOR[MapChange[K, V]]()}
}

// JSONMap encodes a Map in JSON: the entries as a JSON object, a change as
// {"k":…,"v":…} or {"k":…,"d":true} (an empty string value is left out).
// The agent's kv states use it.
func JSONMap[K comparable, V any]() MapCodec[K, V] {
	return MapCodec[K, V]{Entries: codec.JSON[map[K]V](), Change: codec.JSON[MapChange[K, V]]()}
}

// mapShard is the shard of a Map.
type mapShard[K comparable, V any] = node.DeltaShard[MapValue[K, V], MapValue[K, V], MapChange[K, V], MapChange[K, V]]

// Map defines a replicated map state: every node owns a MapValue[K, V],
// writes replicate as per-key deltas ([MapChange]), and the view is the
// value itself (no copy). The zero value of each field but StateName is
// useful.
type Map[K comparable, V any] struct {
	// StateName is the state's cluster-wide unique name.
	StateName string
	// Wire is the wire version sent (0 means 1). Views and deltas of any
	// version from 1 up to it decode with Codec; newer ones fail with
	// dstate.ErrUnknownVersion. The storage version is 1.
	Wire uint32
	// Codec encodes entries and changes; the zero value is CBORMap.
	Codec MapCodec[K, V]
	// Urgency, when set, decides how urgently one change travels; nil
	// means dstate.Default (the push mode of the state's SyncStrategy).
	Urgency func(old, new MapValue[K, V], c MapChange[K, V]) dstate.SyncUrgency
}

var (
	_ dstate.DeltaDistributedState[MapValue[int, int], MapValue[int, int], MapChange[int, int], MapChange[int, int]] = Map[int, int]{}
	_ dstate.UrgencyDecider[MapValue[int, int], MapChange[int, int]]                                                 = Map[int, int]{}
)

func (d Map[K, V]) codec() MapCodec[K, V] {
	if d.Codec.Entries == nil || d.Codec.Change == nil {
		c := CBORMap[K, V]()
		if d.Codec.Entries != nil {
			c.Entries = d.Codec.Entries
		}
		if d.Codec.Change != nil {
			c.Change = d.Codec.Change
		}
		return c
	}
	return d.Codec
}

// Name implements dstate.StateCodec.
func (d Map[K, V]) Name() string { return d.StateName }

// WireVersion implements dstate.StateCodec: Wire, or 1.
func (d Map[K, V]) WireVersion() uint32 { return max(d.Wire, 1) }

// StorageVersion implements dstate.StateCodec: 1.
func (Map[K, V]) StorageVersion() uint32 { return 1 }

// checkWire accepts wire versions 1 up to the definition's own.
func (d Map[K, V]) checkWire(what string, version uint32) error {
	if version == 0 || version > d.WireVersion() {
		return fmt.Errorf("%w: map %q %s wire version %d (this node reads 1..%d)", dstate.ErrUnknownVersion, d.StateName, what, version, d.WireVersion())
	}
	return nil
}

// ProjectView implements dstate.DeltaDistributedState: the value itself.
func (Map[K, V]) ProjectView(s *MapValue[K, V]) MapValue[K, V] { return *s }

// ProjectDelta implements dstate.DeltaDistributedState: the change itself.
func (Map[K, V]) ProjectDelta(c MapChange[K, V]) MapChange[K, V] { return c }

// ApplyDelta implements dstate.DeltaDistributedState; the old view is left
// as it was.
func (Map[K, V]) ApplyDelta(v MapValue[K, V], c MapChange[K, V]) (MapValue[K, V], error) {
	return v.Apply(c), nil
}

// SyncUrgency implements dstate.UrgencyDecider through Urgency.
func (d Map[K, V]) SyncUrgency(old, new MapValue[K, V], c MapChange[K, V]) dstate.SyncUrgency {
	if d.Urgency == nil {
		return dstate.Default
	}
	return d.Urgency(old, new, c)
}

// EncodeView implements dstate.DeltaDistributedState.
func (d Map[K, V]) EncodeView(v MapValue[K, V]) ([]byte, error) {
	return d.codec().Entries.Encode(v.ToMap())
}

// DecodeView implements dstate.DeltaDistributedState.
func (d Map[K, V]) DecodeView(b []byte, version uint32) (MapValue[K, V], error) {
	if err := d.checkWire("view", version); err != nil {
		return MapValue[K, V]{}, err
	}
	return d.decodeEntries(b)
}

// EncodeDelta implements dstate.DeltaDistributedState.
func (d Map[K, V]) EncodeDelta(c MapChange[K, V]) ([]byte, error) { return d.codec().Change.Encode(c) }

// DecodeDelta implements dstate.DeltaDistributedState.
func (d Map[K, V]) DecodeDelta(b []byte, version uint32) (MapChange[K, V], error) {
	if err := d.checkWire("delta", version); err != nil {
		return MapChange[K, V]{}, err
	}
	c, err := d.codec().Change.Decode(b)
	if err != nil {
		return MapChange[K, V]{}, fmt.Errorf("map %q delta: %w", d.StateName, err)
	}
	return c, nil
}

// EncodeState implements dstate.StateCodec.
func (d Map[K, V]) EncodeState(s MapValue[K, V]) ([]byte, error) {
	return d.codec().Entries.Encode(s.ToMap())
}

// DecodeState implements dstate.StateCodec.
func (d Map[K, V]) DecodeState(b []byte, version uint32) (MapValue[K, V], error) {
	if version != 1 {
		return MapValue[K, V]{}, fmt.Errorf("map %q: %w", d.StateName, dstate.UnknownVersionError(version))
	}
	return d.decodeEntries(b)
}

func (d Map[K, V]) decodeEntries(b []byte) (MapValue[K, V], error) {
	m, err := d.codec().Entries.Decode(b)
	if err != nil {
		return MapValue[K, V]{}, fmt.Errorf("map %q: %w", d.StateName, err)
	}
	return NewMapValue(m), nil
}

// MapShard is the typed handle of a registered [Map]. Its methods are safe
// for concurrent use.
type MapShard[K comparable, V any] struct {
	s *mapShard[K, V]
}

// RegisterMap registers def on n and returns its handle; see
// node.RegisterDelta. opts.Config.SyncStrategy is the state's sync
// strategy.
func RegisterMap[K comparable, V any](ctx context.Context, n *node.Node, def Map[K, V], opts node.StateOptions[MapValue[K, V]]) (*MapShard[K, V], error) {
	s, err := node.RegisterDelta(ctx, n, def, opts)
	if err != nil {
		return nil, err
	}
	return NewMapShard(s), nil
}

// NewMapShard returns the handle of a Map registered otherwise (with
// agent.RegisterDelta, say).
func NewMapShard[K comparable, V any](s *node.DeltaShard[MapValue[K, V], MapValue[K, V], MapChange[K, V], MapChange[K, V]]) *MapShard[K, V] {
	return &MapShard[K, V]{s: s}
}

// Shard returns the underlying shard (views, queries, watch, metrics).
func (m *MapShard[K, V]) Shard() *node.DeltaShard[MapValue[K, V], MapValue[K, V], MapChange[K, V], MapChange[K, V]] {
	return m.s
}

// Set sets k to v in this node's map and replicates the change.
func (m *MapShard[K, V]) Set(ctx context.Context, k K, v V) (dstate.Generation, error) {
	return m.Apply(ctx, MapChange[K, V]{Key: k, Value: v})
}

// Delete deletes k from this node's map and replicates the change.
func (m *MapShard[K, V]) Delete(ctx context.Context, k K) (dstate.Generation, error) {
	return m.Apply(ctx, MapChange[K, V]{Key: k, Delete: true})
}

// Apply applies one change to this node's map and replicates it.
func (m *MapShard[K, V]) Apply(ctx context.Context, c MapChange[K, V]) (dstate.Generation, error) {
	gen, _, err := m.s.MutateDelta(ctx, func(s *MapValue[K, V]) MapChange[K, V] {
		*s = s.Apply(c)
		return c
	})
	return gen, err
}

// View returns the map of node id as this node holds it.
func (m *MapShard[K, V]) View(id dstate.NodeID) (MapValue[K, V], bool) {
	v, ok := m.s.Views().Get(id)
	if !ok {
		return MapValue[K, V]{}, false
	}
	return v.Value, true
}

// Local returns this node's own map.
func (m *MapShard[K, V]) Local() MapValue[K, V] {
	v, _ := m.View(m.s.NodeID())
	return v
}

// Get returns k in the map of node id as this node holds it.
func (m *MapShard[K, V]) Get(id dstate.NodeID, k K) (V, bool) {
	v, _ := m.View(id)
	return v.Get(k)
}

// Len returns the number of entries in node id's map.
func (m *MapShard[K, V]) Len(id dstate.NodeID) int {
	v, _ := m.View(id)
	return v.Len()
}

// All iterates over the map of every node this node holds a view of.
func (m *MapShard[K, V]) All() iter.Seq2[dstate.NodeID, MapValue[K, V]] {
	return func(yield func(dstate.NodeID, MapValue[K, V]) bool) {
		for id, v := range m.s.Views().All {
			if !yield(id, v.Value) {
				return
			}
		}
	}
}
