package replicated

import (
	"context"
	"fmt"

	"github.com/dstate-go/dstate/pkg/codec"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// Register defines a last-write-wins register state: every node owns a
// value of T, and each write replaces it; the write travels whole as the
// delta, and peers keep the owner's latest value (the engine orders an
// owner's writes by generation).
type Register[T any] struct {
	// StateName is the state's cluster-wide unique name.
	StateName string
	// Codec encodes the value; nil means codec.CBOR.
	Codec codec.Codec[T]
	// Urgency, when set, decides how urgently one write travels; nil
	// means dstate.Default (the push mode of the state's SyncStrategy).
	Urgency func(old, new T) dstate.SyncUrgency
}

var (
	_ dstate.DeltaDistributedState[string, string, string, string] = Register[string]{}
	_ dstate.UrgencyDecider[string, string]                        = Register[string]{}
)

func (r Register[T]) codec() codec.Codec[T] {
	if r.Codec == nil {
		return codec.CBOR[T]()
	}
	return r.Codec
}

// Name implements dstate.StateCodec.
func (r Register[T]) Name() string { return r.StateName }

// WireVersion implements dstate.StateCodec: 1.
func (Register[T]) WireVersion() uint32 { return 1 }

// StorageVersion implements dstate.StateCodec: 1.
func (Register[T]) StorageVersion() uint32 { return 1 }

// ProjectView implements dstate.DeltaDistributedState: the value.
func (Register[T]) ProjectView(s *T) T { return *s }

// ProjectDelta implements dstate.DeltaDistributedState: the written value.
func (Register[T]) ProjectDelta(v T) T { return v }

// ApplyDelta implements dstate.DeltaDistributedState: the write replaces
// the view.
func (Register[T]) ApplyDelta(_, v T) (T, error) { return v, nil }

// SyncUrgency implements dstate.UrgencyDecider through Urgency.
func (r Register[T]) SyncUrgency(old, new, _ T) dstate.SyncUrgency {
	if r.Urgency == nil {
		return dstate.Default
	}
	return r.Urgency(old, new)
}

// EncodeView implements dstate.DeltaDistributedState.
func (r Register[T]) EncodeView(v T) ([]byte, error) { return r.codec().Encode(v) }

// DecodeView implements dstate.DeltaDistributedState.
func (r Register[T]) DecodeView(b []byte, version uint32) (T, error) {
	return r.decode("view", b, version)
}

// EncodeDelta implements dstate.DeltaDistributedState.
func (r Register[T]) EncodeDelta(v T) ([]byte, error) { return r.codec().Encode(v) }

// DecodeDelta implements dstate.DeltaDistributedState.
func (r Register[T]) DecodeDelta(b []byte, version uint32) (T, error) {
	return r.decode("delta", b, version)
}

// EncodeState implements dstate.StateCodec.
func (r Register[T]) EncodeState(v T) ([]byte, error) { return r.codec().Encode(v) }

// DecodeState implements dstate.StateCodec.
func (r Register[T]) DecodeState(b []byte, version uint32) (T, error) {
	return r.decode("state", b, version)
}

func (r Register[T]) decode(what string, b []byte, version uint32) (T, error) {
	var zero T
	if version != 1 {
		return zero, fmt.Errorf("register %q %s: %w", r.StateName, what, dstate.UnknownVersionError(version))
	}
	v, err := r.codec().Decode(b)
	if err != nil {
		return zero, fmt.Errorf("register %q %s: %w", r.StateName, what, err)
	}
	return v, nil
}

// RegisterShard is the typed handle of a registered [Register]. Its
// methods are safe for concurrent use.
type RegisterShard[T any] struct {
	s *node.DeltaShard[T, T, T, T]
}

// RegisterRegister registers def on n and returns its handle; see
// [RegisterMap].
func RegisterRegister[T any](ctx context.Context, n *node.Node, def Register[T], opts node.StateOptions[T]) (*RegisterShard[T], error) {
	s, err := node.RegisterDelta(ctx, n, def, opts)
	if err != nil {
		return nil, err
	}
	return NewRegisterShard(s), nil
}

// NewRegisterShard returns the handle of a Register registered otherwise.
func NewRegisterShard[T any](s *node.DeltaShard[T, T, T, T]) *RegisterShard[T] {
	return &RegisterShard[T]{s}
}

// Shard returns the underlying shard.
func (r *RegisterShard[T]) Shard() *node.DeltaShard[T, T, T, T] { return r.s }

// Set makes v this node's value and replicates it.
func (r *RegisterShard[T]) Set(ctx context.Context, v T) (dstate.Generation, error) {
	gen, _, err := r.s.MutateDelta(ctx, func(s *T) T {
		*s = v
		return v
	})
	return gen, err
}

// Get returns node id's latest value as this node holds it.
func (r *RegisterShard[T]) Get(id dstate.NodeID) (T, bool) {
	v, ok := r.s.Views().Get(id)
	if !ok {
		var zero T
		return zero, false
	}
	return v.Value, true
}
