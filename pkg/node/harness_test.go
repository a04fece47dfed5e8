package node_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// testCluster is N nodes in one process over real loopback TCP, with a
// shared, hand-driven membership feed.
type testCluster struct {
	t     testing.TB
	ev    *dstatetest.TestClusterEvents
	rt    *gosched.Runtime
	nodes map[dstate.NodeID]*node.Node
	addrs map[dstate.NodeID]string
	trs   map[dstate.NodeID]*transport.Transport
	// stores are given to every node started after they are set.
	stores map[dstate.Durability]dstate.EnvelopeStore
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestCluster(t testing.TB) *testCluster {
	t.Helper()
	cfg := gosched.DefaultConfig()
	cfg.Logger = quietLogger()
	rt, err := gosched.New(cfg)
	require.NoError(t, err)
	c := &testCluster{t: t, ev: dstatetest.NewTestClusterEvents(), rt: rt,
		nodes: map[dstate.NodeID]*node.Node{}, addrs: map[dstate.NodeID]string{}, trs: map[dstate.NodeID]*transport.Transport{}}
	t.Cleanup(func() {
		for id := range c.nodes {
			c.stop(id)
		}
		rt.Close()
	})
	return c
}

// start starts node id (on its previous address if it had one) without
// announcing it.
func (c *testCluster) start(id dstate.NodeID) *node.Node {
	c.t.Helper()
	tcfg := transport.DefaultConfig()
	tcfg.NodeID = id
	tcfg.ClusterName = "test"
	tcfg.ReconnectBackoffMin = 10 * time.Millisecond
	tcfg.ReconnectBackoffMax = 100 * time.Millisecond
	tcfg.Logger = quietLogger()
	if a := c.addrs[id]; a != "" {
		tcfg.BindAddr = a
	}
	tr, err := transport.New(tcfg)
	require.NoError(c.t, err)
	n, err := node.New(node.Config{ID: id, Runtime: c.rt, Events: c.ev, Transport: tr, Logger: quietLogger(),
		FeedInterval: 20 * time.Millisecond, Stores: c.stores})
	require.NoError(c.t, err)
	c.nodes[id] = n
	c.trs[id] = tr
	c.addrs[id] = n.Addr()
	return n
}

// join announces node id to every node (itself included, which ignores it)
// and announces every other live node to it.
func (c *testCluster) join(id dstate.NodeID) {
	c.ev.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: id, Tags: map[string]string{node.TransportTag: c.addrs[id]}})
}

// joinAll announces every node.
func (c *testCluster) joinAll() {
	for _, id := range c.ids() {
		c.join(id)
	}
}

func (c *testCluster) ids() []dstate.NodeID {
	var ids []dstate.NodeID
	for id := range c.nodes {
		ids = append(ids, id)
	}
	return ids
}

// stop closes node id without telling the others (a crash, as far as they
// know).
func (c *testCluster) stop(id dstate.NodeID) {
	n := c.nodes[id]
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	require.NoError(c.t, n.Close(ctx))
	delete(c.nodes, id)
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, what)
}

// counterOf returns what observer holds of owner's counter.
func counterOf(s *node.Shard[dstatetest.Counter, dstatetest.Counter], owner dstate.NodeID) (dstatetest.Counter, dstate.Generation, bool) {
	v, ok := s.Views().Get(owner)
	if !ok || v.Generation.IsZero() {
		return dstatetest.Counter{}, dstate.Generation{}, false
	}
	return v.Value, v.Generation, true
}
