package replicated

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// Counter defines a replicated counter state: every node owns an int64,
// and an addition replicates as its amount (a delta of one varint). The
// view is the node's count; [CounterShard.Sum] adds up every node's.
type Counter struct {
	// StateName is the state's cluster-wide unique name.
	StateName string
	// Urgency, when set, decides how urgently one addition travels; nil
	// means dstate.Default (the push mode of the state's SyncStrategy).
	Urgency func(old, new int64, add int64) dstate.SyncUrgency
}

var (
	_ dstate.DeltaDistributedState[int64, int64, int64, int64] = Counter{}
	_ dstate.UrgencyDecider[int64, int64]                      = Counter{}
)

// Name implements dstate.StateCodec.
func (c Counter) Name() string { return c.StateName }

// WireVersion implements dstate.StateCodec: 1.
func (Counter) WireVersion() uint32 { return 1 }

// StorageVersion implements dstate.StateCodec: 1.
func (Counter) StorageVersion() uint32 { return 1 }

// ProjectView implements dstate.DeltaDistributedState.
func (Counter) ProjectView(s *int64) int64 { return *s }

// ProjectDelta implements dstate.DeltaDistributedState.
func (Counter) ProjectDelta(add int64) int64 { return add }

// ApplyDelta implements dstate.DeltaDistributedState.
func (Counter) ApplyDelta(v, add int64) (int64, error) { return v + add, nil }

// SyncUrgency implements dstate.UrgencyDecider through Urgency.
func (c Counter) SyncUrgency(old, new, add int64) dstate.SyncUrgency {
	if c.Urgency == nil {
		return dstate.Default
	}
	return c.Urgency(old, new, add)
}

// EncodeView implements dstate.DeltaDistributedState: a varint.
func (Counter) EncodeView(v int64) ([]byte, error) { return binary.AppendVarint(nil, v), nil }

// DecodeView implements dstate.DeltaDistributedState.
func (c Counter) DecodeView(b []byte, version uint32) (int64, error) {
	return c.decode("view", b, version)
}

// EncodeDelta implements dstate.DeltaDistributedState: a varint.
func (Counter) EncodeDelta(add int64) ([]byte, error) { return binary.AppendVarint(nil, add), nil }

// AppendDelta implements dstate.DeltaAppender: EncodeDelta's varint,
// appended to dst, so an increment allocates nothing for its encoding.
func (Counter) AppendDelta(dst []byte, add int64) ([]byte, error) {
	return binary.AppendVarint(dst, add), nil
}

var _ dstate.DeltaAppender[int64] = Counter{}

// DecodeDelta implements dstate.DeltaDistributedState.
func (c Counter) DecodeDelta(b []byte, version uint32) (int64, error) {
	return c.decode("delta", b, version)
}

// EncodeState implements dstate.StateCodec: a varint.
func (Counter) EncodeState(v int64) ([]byte, error) { return binary.AppendVarint(nil, v), nil }

// DecodeState implements dstate.StateCodec.
func (c Counter) DecodeState(b []byte, version uint32) (int64, error) {
	return c.decode("state", b, version)
}

func (c Counter) decode(what string, b []byte, version uint32) (int64, error) {
	if version != 1 {
		return 0, fmt.Errorf("counter %q %s: %w", c.StateName, what, dstate.UnknownVersionError(version))
	}
	v, n := binary.Varint(b)
	if n <= 0 || n != len(b) {
		return 0, fmt.Errorf("counter %q %s: %w", c.StateName, what, dstate.MalformedError("not one varint (%d bytes)", len(b)))
	}
	return v, nil
}

// CounterShard is the typed handle of a registered [Counter]. Its methods
// are safe for concurrent use.
type CounterShard struct {
	s *node.DeltaShard[int64, int64, int64, int64]
}

// RegisterCounter registers def on n and returns its handle; see
// [RegisterMap].
func RegisterCounter(ctx context.Context, n *node.Node, def Counter, opts node.StateOptions[int64]) (*CounterShard, error) {
	s, err := node.RegisterDelta(ctx, n, def, opts)
	if err != nil {
		return nil, err
	}
	return NewCounterShard(s), nil
}

// NewCounterShard returns the handle of a Counter registered otherwise.
func NewCounterShard(s *node.DeltaShard[int64, int64, int64, int64]) *CounterShard {
	return &CounterShard{s}
}

// Shard returns the underlying shard.
func (c *CounterShard) Shard() *node.DeltaShard[int64, int64, int64, int64] { return c.s }

// Add adds n to this node's count, replicates the addition and returns
// the new count.
func (c *CounterShard) Add(ctx context.Context, n int64) (int64, error) {
	_, v, err := c.s.MutateDelta(ctx, func(s *int64) int64 {
		*s += n
		return n
	})
	return v, err
}

// Get returns node id's count as this node holds it.
func (c *CounterShard) Get(id dstate.NodeID) int64 {
	v, _ := c.s.Views().Get(id)
	if v == nil {
		return 0
	}
	return v.Value
}

// Sum returns the sum of every node's count this node holds a view of.
func (c *CounterShard) Sum() int64 {
	var sum int64
	for _, v := range c.s.Views().All {
		sum += v.Value
	}
	return sum
}
