package node_test

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

type gaugesShard = node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]

// startDigestNode starts node id in c with the given digest interval,
// transport queue size and, when drop is set, a fault hook that drops
// every frame while drop holds true.
func startDigestNode(t *testing.T, c *testCluster, id dstate.NodeID, every time.Duration, queue int, drop *atomic.Bool) *node.Node {
	t.Helper()
	tcfg := transport.DefaultConfig()
	tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = id, c.Name, quietLogger()
	tcfg.ReconnectBackoffMin, tcfg.ReconnectBackoffMax = 10*time.Millisecond, 100*time.Millisecond
	if queue > 0 {
		tcfg.QueueSize = queue
	}
	if drop != nil {
		tcfg.FaultHook = func(dstate.NodeID) bool { return !drop.Load() }
	}
	tr, err := transport.New(tcfg)
	require.NoError(t, err)
	n, err := node.New(node.Config{ID: id, Runtime: c.Runtime, Events: c.Events, Transport: tr, Logger: quietLogger(), DigestInterval: every})
	require.NoError(t, err)
	c.Nodes[id], c.Transports[id], c.Addrs[id] = n, tr, n.Addr()
	return n
}

// registerGauges registers the example delta state, active push without
// any periodic full sync, on every running node.
func registerGauges(t *testing.T, c *testCluster) map[dstate.NodeID]*gaugesShard {
	t.Helper()
	out := map[dstate.NodeID]*gaugesShard{}
	for id, n := range c.Nodes {
		s, err := node.RegisterDelta(ctx, n, dstatetest.GaugesState{}, node.StateOptions[dstatetest.Gauges]{
			Config: dstate.DefaultStateConfig(), Initial: dstatetest.NewGauges()})
		require.NoError(t, err, "register gauges on %s", id)
		require.Zero(t, s.Config().SyncStrategy.PeriodicFullSync)
		out[id] = s
	}
	return out
}

// heldGeneration is the generation of owner's view on s, zero while s holds
// none yet.
func heldGeneration(s *gaugesShard, owner dstate.NodeID) dstate.Generation {
	v, ok := s.Views().Get(owner)
	if !ok {
		return dstate.Generation{}
	}
	return v.Generation
}

// TestDigestRepairsALostDelta: a delta lost on the way (dropped by the
// transport's fault hook) is repaired by the periodic digest, with no
// further write and no periodic full sync configured: the receiver sees
// from the digest that its view is behind and pulls it.
func TestDigestRepairsALostDelta(t *testing.T) {
	c := newTestCluster(t)
	var drop atomic.Bool
	startDigestNode(t, c, "n0", 20*time.Millisecond, 0, &drop)
	startDigestNode(t, c, "n1", 20*time.Millisecond, 0, nil)
	shards := registerGauges(t, c)
	c.JoinAll()
	g0, _, err := shards["n0"].MutateDelta(ctx, dstatetest.Set("cpu", 1))
	require.NoError(t, err)
	eventually(t, "n1 holds n0's first write", func() bool { return heldGeneration(shards["n1"], "n0") == g0 })

	drop.Store(true)
	g1, _, err := shards["n0"].MutateDelta(ctx, dstatetest.Set("cpu", 2))
	require.NoError(t, err)
	eventually(t, "the delta is dropped", func() bool { return c.Transports["n0"].Stats().FaultDrops > 0 })
	drop.Store(false)

	eventually(t, "n1 catches up with n0 without another write", func() bool { return heldGeneration(shards["n1"], "n0") == g1 })
	v, _ := shards["n1"].Views().Get("n0")
	require.Equal(t, int64(2), v.Value["cpu"])
	m := shards["n1"].Metrics()
	require.NotZero(t, m.DigestsBehind, "a digest showed the view behind")
	require.NotZero(t, m.SnapshotRequestsSent, "the view was pulled")
	require.Zero(t, m.DeltasReceived-1, "the lost delta never arrived")
	require.NotZero(t, c.Nodes["n0"].Stats().DigestsSent)
}

// TestDigestOnLinkUpRepairsRefusedFrames: with periodic digests far off,
// frames refused while the peer was unreachable (a full queue) are
// repaired as soon as the link to the peer comes up: the node sends the
// peer a digest on the new link, and the peer pulls.
func TestDigestOnLinkUpRepairsRefusedFrames(t *testing.T) {
	c := newTestCluster(t)
	startDigestNode(t, c, "n0", time.Hour, 1, nil)
	startDigestNode(t, c, "n1", time.Hour, 0, nil)
	shards := registerGauges(t, c)

	// n0 first learns a dead address for n1: its writer cannot connect,
	// the join snapshot fills its one-frame queue and the writes are
	// refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := ln.Addr().String()
	require.NoError(t, ln.Close())
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: "n1", Tags: map[string]string{node.TransportTag: dead}})
	c.Join("n0")
	var last dstate.Generation
	eventually(t, "a frame to n1 is refused", func() bool {
		last, _, err = shards["n0"].MutateDelta(ctx, dstatetest.Set("cpu", int64(last.Age)+1))
		require.NoError(t, err)
		return c.Transports["n0"].Stats().QueueDrops > 0
	})
	// Now n0 learns n1's real address; nothing more is written.
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeUpdated, Node: "n1", Tags: map[string]string{node.TransportTag: c.Addrs["n1"]}})
	eventually(t, "n1 catches up with n0's last write", func() bool { return heldGeneration(shards["n1"], "n0") == last })
	require.NotZero(t, shards["n1"].Metrics().DigestsBehind)
}
