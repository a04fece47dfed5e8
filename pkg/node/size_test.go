package node_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// TestMutationOverSnapshotLimitRefusedAtOwner: an owner whose state would
// pass the snapshot limit refuses the mutation with a *SizeLimitError, and
// its peer, decoding with the same limits, stays current: it refuses
// nothing, holds the owner's last accepted generation, and follows the
// mutations that fit after the refusal.
func TestMutationOverSnapshotLimitRefusedAtOwner(t *testing.T) {
	c := newTestCluster(t)
	lim := dstate.DecodeLimits{MaxSnapshot: 512}
	shards := map[dstate.NodeID]*node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]{}
	for _, id := range []dstate.NodeID{"n0", "n1"} {
		tcfg := transport.DefaultConfig()
		tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = id, c.Name, quietLogger()
		tr, err := transport.New(tcfg)
		require.NoError(t, err)
		n, err := node.New(node.Config{ID: id, Runtime: c.Runtime, Events: c.Events, Transport: tr, Logger: quietLogger(), Limits: lim})
		require.NoError(t, err)
		c.Nodes[id], c.Transports[id], c.Addrs[id] = n, tr, n.Addr()
		s, err := node.RegisterDelta(t.Context(), n, dstatetest.GaugesState{}, node.StateOptions[dstatetest.Gauges]{Initial: dstatetest.NewGauges()})
		require.NoError(t, err)
		shards[id] = s
	}
	c.JoinAll()
	owner, peer := shards["n0"], shards["n1"]
	current := func() bool {
		own, _ := owner.Views().Get("n0")
		got, ok := peer.Views().Get("n0")
		return ok && got.Generation == own.Generation && len(got.Value) == len(own.Value)
	}
	eventually(t, "n1 holds n0's view", current)

	ctx := context.Background()
	var err error
	i := 0
	for ; i < 100 && err == nil; i++ {
		_, _, err = owner.MutateDelta(ctx, dstatetest.Set(strings.Repeat("k", 30)+string(rune('A'+i)), int64(i)))
	}
	require.Error(t, err, "the state never passed the limit")
	require.ErrorIs(t, err, dstate.ErrStateTooLarge)
	var se *dstate.SizeLimitError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "gauges", se.State)
	require.Equal(t, 512, se.Max)
	require.Contains(t, err.Error(), `dstate: state "gauges" would encode to`)
	require.Contains(t, err.Error(), "over the 512 bytes snapshot limit")
	accepted := i - 1
	require.Equal(t, uint64(accepted), owner.Generation().Age, "the refused mutation left no generation")
	own, _ := owner.Views().Get("n0")
	require.Len(t, own.Value, accepted)

	eventually(t, "n1 current with n0's last accepted generation", current)
	// A query that refreshes every view pulls n0's snapshot: it arrives
	// within the limit.
	require.NoError(t, peer.Query(ctx, 0, func(dstate.Views[dstatetest.GaugesView]) {}))
	_, _, err = owner.MutateDelta(ctx, dstatetest.Set(strings.Repeat("k", 30)+"A", -1))
	require.NoError(t, err, "a mutation that fits goes through")
	eventually(t, "n1 follows the next mutation", func() bool {
		got, ok := peer.Views().Get("n0")
		return current() && ok && got.Value[strings.Repeat("k", 30)+"A"] == -1
	})
	require.Zero(t, c.Nodes["n1"].Stats().LimitExceeded[dstate.LimitSnapshotBytes], "the peer refused nothing")
	require.Zero(t, c.Nodes["n1"].Stats().DecodeErrors)
}
