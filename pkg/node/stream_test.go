package node_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// addTCPNode adds node id to c over a real TCP transport (maxFrame 0: the
// transport's default frame size).
func addTCPNode(t *testing.T, c *testCluster, id dstate.NodeID, maxFrame int) *node.Node {
	t.Helper()
	tcfg := transport.DefaultConfig()
	tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = id, c.Name, quietLogger()
	if maxFrame > 0 {
		tcfg.MaxFrameSize = maxFrame
	}
	tr, err := transport.New(tcfg)
	require.NoError(t, err)
	n, err := node.New(node.Config{ID: id, Runtime: c.Runtime, Events: c.Events, Transport: tr, Logger: quietLogger()})
	require.NoError(t, err)
	c.Nodes[id], c.Transports[id], c.Addrs[id] = n, tr, n.Addr()
	return n
}

// TestStreamedSnapshotToAJoiningNode: an owner of a view larger than a
// snapshot chunk streams it to a node that joins while the owner goes on
// mutating; the new node ends with the owner's current view, and nothing
// was refused or lost on the way.
func TestStreamedSnapshotToAJoiningNode(t *testing.T) {
	c := newTestCluster(t)
	initial := dstatetest.NewGauges()
	for i := range 40_000 {
		initial.Values[fmt.Sprintf("key-%06d-%040d", i, i)] = int64(i) // ~2.3 MB of view: 3 chunks
	}
	shards := map[dstate.NodeID]*node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]{}
	for _, id := range []dstate.NodeID{"n0", "n1"} {
		n := addTCPNode(t, c, id, 64<<10)
		init := dstatetest.NewGauges()
		if id == "n0" {
			init = initial
		}
		s, err := node.RegisterDelta(t.Context(), n, dstatetest.ChunkedGaugesState{}, node.StateOptions[dstatetest.Gauges]{Initial: init})
		require.NoError(t, err)
		shards[id] = s
	}
	owner, peer := shards["n0"], shards["n1"]
	c.JoinAll()
	ctx := context.Background()
	for i := range 50 {
		_, _, err := owner.MutateDelta(ctx, dstatetest.Set(fmt.Sprint("during-", i), int64(i)))
		require.NoError(t, err)
	}
	eventually(t, "n1 holds n0's current view", func() bool {
		own, _ := owner.Views().Get("n0")
		got, ok := peer.Views().Get("n0")
		return ok && got.Generation == own.Generation && maps.Equal(got.Value, own.Value)
	})
	require.Greater(t, peer.Metrics().ChunksReceived, uint64(1), "the view came as a stream")
	require.Zero(t, c.Nodes["n1"].Stats().DecodeErrors)
	require.Zero(t, peer.Metrics().SyncFailures)
}

// TestParallelDecode: a node whose state decodes large snapshots before its
// actor (StateOptions.ParallelDecode) joins three owners of large views and
// ends with each owner's view, as mutations go on.
func TestParallelDecode(t *testing.T) {
	c := newTestCluster(t)
	shards := map[dstate.NodeID]*node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]{}
	ids := []dstate.NodeID{"n0", "n1", "n2", "n3"}
	for i, id := range ids {
		n := addTCPNode(t, c, id, 0)
		init := dstatetest.NewGauges()
		if id != "n3" {
			for k := range 5_000 {
				init.Values[fmt.Sprintf("%s-key-%06d-%020d", id, k, i)] = int64(k) // ~200 KB views, whole snapshots
			}
		}
		s, err := node.RegisterDelta(t.Context(), n, dstatetest.GaugesState{}, node.StateOptions[dstatetest.Gauges]{Initial: init, ParallelDecode: true})
		require.NoError(t, err)
		shards[id] = s
	}
	c.JoinAll()
	ctx := context.Background()
	for i := range 20 {
		_, _, err := shards[ids[i%3]].MutateDelta(ctx, dstatetest.Set(fmt.Sprint("m", i), int64(i)))
		require.NoError(t, err)
	}
	eventually(t, "every node holds every owner's current view", func() bool {
		for _, owner := range ids {
			own, _ := shards[owner].Views().Get(owner)
			for _, obs := range ids {
				got, ok := shards[obs].Views().Get(owner)
				if !ok || got.Generation != own.Generation || !maps.Equal(got.Value, own.Value) {
					return false
				}
			}
		}
		return true
	})
	for _, id := range ids {
		require.Zero(t, shards[id].Metrics().SyncFailures, id)
	}
}

// TestParallelDecodePanicIsContained: with ParallelDecode a snapshot's view
// is decoded on the transport's reader goroutine; a DecodeView that panics
// there is recovered like one on the actor: the process goes on, the
// receiver keeps no partial view and counts the failure, and once the
// decoder is healthy again the receiver catches up.
func TestParallelDecodePanicIsContained(t *testing.T) {
	c := newTestCluster(t)
	sw := &dstatetest.PanicSwitch{}
	sw.Set(dstate.CallbackDecodeView)
	cfg := dstate.DefaultStateConfig()
	cfg.PullTimeout = 200 * time.Millisecond // the receiver asks again soon
	init := dstatetest.NewGauges()
	for k := range 5_000 {
		init.Values[fmt.Sprintf("key-%06d-%020d", k, k)] = int64(k) // ~200 KB: decoded before the actor
	}
	owner, err := node.RegisterDelta(t.Context(), addTCPNode(t, c, "n0", 0), dstatetest.GaugesState{},
		node.StateOptions[dstatetest.Gauges]{Config: cfg, Initial: init})
	require.NoError(t, err)
	peer, err := node.RegisterDelta(t.Context(), addTCPNode(t, c, "n1", 0), dstatetest.PanickyGauges{Switch: sw},
		node.StateOptions[dstatetest.Gauges]{Config: cfg, Initial: dstatetest.NewGauges(), ParallelDecode: true})
	require.NoError(t, err)
	c.JoinAll()
	eventually(t, "the panicking decode counted as a failed sync", func() bool { return peer.Metrics().SyncFailures > 0 })
	if v, ok := peer.Views().Get("n0"); ok {
		require.True(t, v.Generation.IsZero(), "a view from a snapshot whose decoder panicked: %s", v.Generation)
	}
	sw.Clear()
	_, _, err = owner.MutateDelta(context.Background(), dstatetest.Set("after", 1))
	require.NoError(t, err)
	eventually(t, "n1 holds n0's current view once its decoder is healthy", func() bool {
		own, _ := owner.Views().Get("n0")
		got, ok := peer.Views().Get("n0")
		return ok && got.Generation == own.Generation && maps.Equal(got.Value, own.Value)
	})
}
