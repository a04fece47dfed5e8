package node_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
)

// unreachableLoads is an envelope store whose loads fail while down is
// set, as a Raft store's do without a leader.
type unreachableLoads struct {
	dstate.EnvelopeStore
	down atomic.Bool
}

func (u *unreachableLoads) LoadEnvelope(ctx context.Context, state string, n dstate.NodeID) (*dstate.StoredEnvelope, error) {
	if u.down.Load() {
		return nil, &dstate.PersistError{Kind: dstate.ErrStorageUnavailable, Op: "load", Err: errors.New("no Raft leader yet")}
	}
	return u.EnvelopeStore.LoadEnvelope(ctx, state, n)
}

// TestFencedSaveNeverOverwritesAStoredStateItCannotRead: a save of unknown
// outcome landed (readers may have seen it), and when the next save is
// fenced the store cannot be read. The state must not move to a new
// incarnation with a value that does not build on the landed one (that
// would erase a write others saw); it keeps refusing writes until it can
// read and adopt the stored object, and then builds on it.
func TestFencedSaveNeverOverwritesAStoredStateItCannotRead(t *testing.T) {
	c := newTestCluster(t)
	store := &unreachableLoads{EnvelopeStore: dstatetest.NewEnvelopeStore()}
	c.Stores = map[dstate.Durability]dstate.EnvelopeStore{dstate.Local: store}
	s, err := node.Register(ctx, c.Start("n0"), dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Config: dstate.StateConfig{Durability: dstate.Local}})
	require.NoError(t, err)
	g0 := s.Generation()
	landed := dstate.Generation{Incarnation: g0.Incarnation, Age: 1}
	data, err := dstatetest.CounterState{}.EncodeState(dstatetest.Counter{Count: 99, Label: "landed"})
	require.NoError(t, err)
	require.NoError(t, store.SaveEnvelope(ctx, dstate.StoredEnvelope{State: "counter", Node: "n0", Generation: landed, StorageVersion: 1, Data: data}))

	store.down.Store(true)
	for range 3 {
		_, _, err = s.Mutate(ctx, func(c *dstatetest.Counter) { c.Count = 1 })
		require.ErrorIs(t, err, dstate.ErrPersistenceFailed, "fenced, and the store cannot be read")
		require.Equal(t, g0, s.Generation(), "no new incarnation over a stored state this node has not read")
	}
	env, err := store.EnvelopeStore.LoadEnvelope(ctx, "counter", "n0")
	require.NoError(t, err)
	require.Equal(t, landed, env.Generation, "the landed save is still what is stored")

	store.down.Store(false)
	_, _, err = s.Mutate(ctx, func(c *dstatetest.Counter) { c.Count = 1 })
	require.ErrorIs(t, err, dstate.ErrPersistenceFailed, "this write is fenced too, and the landed state is adopted")
	gen, view, err := s.Mutate(ctx, func(c *dstatetest.Counter) { c.Count++ })
	require.NoError(t, err)
	require.Equal(t, int64(100), view.Count, "the next write builds on the landed value")
	require.Equal(t, "landed", view.Label)
	require.Equal(t, dstate.Generation{Incarnation: g0.Incarnation, Age: 2}, gen)
}
