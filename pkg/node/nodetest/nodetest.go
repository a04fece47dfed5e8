package nodetest

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// Bounds of the suite's waits: every wait polls until waitFor has passed.
const (
	waitFor   = 10 * time.Second
	pollEvery = 5 * time.Millisecond
	// closeWithin bounds each node's Close.
	closeWithin = 5 * time.Second
)

// LoopbackConformance runs, as subtests of t, the core scenarios of three
// pkg/node nodes on one runtime, talking over real loopback TCP
// (pkg/transport) with a hand-driven membership feed:
//
//   - ActivePush: a mutation is broadcast to every other node.
//   - DeltaState: a delta state's mutations travel as deltas, in order.
//   - FeedLazyPull: a change-feed notice marks the view stale and a
//     blocking query pulls the new value.
//   - RestartedPeer: a node that restarts on its old address with a new
//     incarnation catches up, and the others see its new incarnation.
//   - Leave: a node that leaves is dropped from the views and members.
//   - DelayedSend: a mutation of Delayed urgency is broadcast by a timer of
//     the runtime, after its delay, as the delta it was.
//   - SingleTargetSend: a change that was not sent leaves a gap; each peer
//     asks the owner for its snapshot and the owner answers each one, so
//     every view catches up.
//
// newRuntime is called once per subtest and returns a fresh runtime on its
// real clock; it releases the runtime with t.Cleanup. The suite registers
// the closing of its nodes after that, so the nodes are closed first.
func LoopbackConformance(t *testing.T, newRuntime func(t *testing.T) dstate.ActorRuntime) {
	t.Run("ActivePush", func(t *testing.T) { testActivePush(t, newRuntime) })
	t.Run("DeltaState", func(t *testing.T) { testDeltaState(t, newRuntime) })
	t.Run("FeedLazyPull", func(t *testing.T) { testFeedLazyPull(t, newRuntime) })
	t.Run("RestartedPeer", func(t *testing.T) { testRestartedPeer(t, newRuntime) })
	t.Run("Leave", func(t *testing.T) { testLeave(t, newRuntime) })
	t.Run("DelayedSend", func(t *testing.T) { testDelayedSend(t, newRuntime) })
	t.Run("SingleTargetSend", func(t *testing.T) { testSingleTargetSend(t, newRuntime) })
}

func testActivePush(t *testing.T, newRuntime func(*testing.T) dstate.ActorRuntime) {
	c := threeNodes(t, newRuntime)
	shards := RegisterCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	gen, view, err := shards["n0"].Mutate(t.Context(), func(s *dstatetest.Counter) { s.Count = 7; s.Label = "seven" })
	require.NoError(t, err)
	require.Equal(t, uint64(1), gen.Age, "age of the first mutation")
	require.Equal(t, int64(7), view.Count)
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" sees n0's counter", func() bool {
			v, g, ok := CounterOf(shards[obs], "n0")
			return ok && v.Count == 7 && v.Label == "seven" && g == gen
		})
	}
	require.GreaterOrEqual(t, shards["n0"].Metrics().SnapshotsSent, uint64(1), "snapshots sent by n0")
}

func testDeltaState(t *testing.T, newRuntime func(*testing.T) dstate.ActorRuntime) {
	c := threeNodes(t, newRuntime)
	shards := map[dstate.NodeID]*node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]{}
	for id, n := range c.Nodes {
		s, err := node.RegisterDelta(t.Context(), n, dstatetest.GaugesState{}, node.StateOptions[dstatetest.Gauges]{Initial: dstatetest.NewGauges()})
		require.NoError(t, err, "register gauges on %s", id)
		shards[id] = s
	}
	c.JoinAll()
	// Wait for the join exchange, so that the deltas below apply in order.
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" holds n0's joined view", func() bool {
			v, ok := shards[obs].Views().Get("n0")
			return ok && !v.Generation.IsZero()
		})
	}
	const n = 20
	for i := range int64(n) {
		_, _, err := shards["n0"].MutateDelta(t.Context(), dstatetest.Set("cpu", i))
		require.NoError(t, err, "delta %d", i)
	}
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" applies n0's deltas", func() bool {
			v, ok := shards[obs].Views().Get("n0")
			return ok && v.Value["cpu"] == n-1 && v.Generation.Age == n
		})
	}
	require.Equal(t, uint64(n), shards["n0"].Metrics().DeltasSent, "deltas sent by n0")
	require.GreaterOrEqual(t, shards["n1"].Metrics().DeltasReceived, uint64(1), "deltas received by n1")
}

func testFeedLazyPull(t *testing.T, newRuntime func(*testing.T) dstate.ActorRuntime) {
	c := threeNodes(t, newRuntime)
	cfg := dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy(), PullTimeout: 5 * time.Second}
	cfg.SyncStrategy.ChangeFeed.BatchInterval = 20 * time.Millisecond
	shards := RegisterCounters(t, c, cfg)
	c.JoinAll()
	eventually(t, "the join exchange", func() bool { _, _, ok := CounterOf(shards["n1"], "n0"); return ok })
	gen, _, err := shards["n0"].Mutate(t.Context(), func(s *dstatetest.Counter) { s.Count = 42 })
	require.NoError(t, err)
	eventually(t, "n1 learns of n0's change from the feed", func() bool {
		v, _ := shards["n1"].Views().Get("n0")
		return v.Pending == gen
	})
	v, _ := shards["n1"].Views().Get("n0")
	require.Equal(t, int64(0), v.Value.Count, "the feed carries no data")

	var got int64
	err = shards["n1"].Query(t.Context(), time.Minute, func(vs dstate.Views[dstatetest.Counter]) {
		v, _ := vs.Get("n0")
		got = v.Value.Count
	})
	require.NoError(t, err, "the blocking query")
	require.Equal(t, int64(42), got, "n0's count after the query's pull")
}

func testRestartedPeer(t *testing.T, newRuntime func(*testing.T) dstate.ActorRuntime) {
	c := threeNodes(t, newRuntime)
	shards := RegisterCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	eventually(t, "the join exchange", func() bool { _, _, ok := CounterOf(shards["n0"], "n2"); return ok })
	_, oldGen, _ := CounterOf(shards["n0"], "n2")

	c.Stop("n2") // its listener is gone; n0 keeps trying to reach it
	_, _, err := shards["n0"].Mutate(t.Context(), func(s *dstatetest.Counter) { s.Count = 99 })
	require.NoError(t, err)

	n2 := c.Start("n2") // the same address, a new incarnation
	s2, err := node.Register(t.Context(), n2, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{})
	require.NoError(t, err)
	c.JoinAll()
	eventually(t, "the restarted n2 catches up with n0", func() bool {
		v, _, ok := CounterOf(s2, "n0")
		return ok && v.Count == 99
	})
	eventually(t, "n0 sees n2's new incarnation", func() bool {
		_, g, ok := CounterOf(shards["n0"], "n2")
		return ok && g.Incarnation > oldGen.Incarnation
	})
}

func testLeave(t *testing.T, newRuntime func(*testing.T) dstate.ActorRuntime) {
	c := threeNodes(t, newRuntime)
	shards := RegisterCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	eventually(t, "healthy after the join exchange", func() bool {
		h, err := c.Nodes["n0"].Health(t.Context(), time.Minute)
		return err == nil && h.Status == dstate.Healthy && shards["n0"].Views().Len() == 3
	})
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeLeft, Node: "n2"})
	for _, obs := range []dstate.NodeID{"n0", "n1"} {
		eventually(t, string(obs)+" drops n2's view", func() bool {
			_, ok := shards[obs].Views().Get("n2")
			return !ok
		})
	}
	require.Equal(t, []dstate.NodeID{"n1"}, c.Nodes["n0"].Members(), "n0's members after n2 left")
	require.Equal(t, []dstate.NodeID{"n0"}, c.Nodes["n1"].Members(), "n1's members after n2 left")

	// Replication between the remaining nodes goes on.
	gen, _, err := shards["n0"].Mutate(t.Context(), func(s *dstatetest.Counter) { s.Count = 5 })
	require.NoError(t, err)
	eventually(t, "n1 sees n0's counter after the leave", func() bool {
		_, g, ok := CounterOf(shards["n1"], "n0")
		return ok && g == gen
	})
}

// gaugeShards registers the example delta state on every node, announces
// the nodes and waits for the join exchange.
func gaugeShards(t *testing.T, c *Cluster) map[dstate.NodeID]*node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange] {
	t.Helper()
	shards := map[dstate.NodeID]*node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]{}
	for id, n := range c.Nodes {
		s, err := node.RegisterDelta(t.Context(), n, dstatetest.GaugesState{}, node.StateOptions[dstatetest.Gauges]{Initial: dstatetest.NewGauges()})
		require.NoError(t, err, "register gauges on %s", id)
		shards[id] = s
	}
	c.JoinAll()
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" holds n0's joined view", func() bool {
			v, ok := shards[obs].Views().Get("n0")
			return ok && !v.Generation.IsZero()
		})
	}
	return shards
}

// withUrgency returns the mutation setting key to v with urgency u.
func withUrgency(key string, v int64, u dstate.SyncUrgency) func(*dstatetest.Gauges) dstatetest.GaugeChange {
	return func(g *dstatetest.Gauges) dstatetest.GaugeChange {
		c := dstatetest.Set(key, v)(g)
		c.Urgency = u
		return c
	}
}

func testDelayedSend(t *testing.T, newRuntime func(*testing.T) dstate.ActorRuntime) {
	c := threeNodes(t, newRuntime)
	shards := gaugeShards(t, c)
	received := map[dstate.NodeID]uint64{}
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		received[obs] = shards[obs].Metrics().DeltasReceived
	}
	gen, _, err := shards["n0"].MutateDelta(t.Context(), withUrgency("cpu", 7, dstate.Delayed(20*time.Millisecond)))
	require.NoError(t, err)
	m := shards["n0"].Metrics()
	require.Equal(t, uint64(1), m.Delayed, "delayed mutations of n0")
	require.Equal(t, uint64(1), m.DeltasSent, "deltas n0 built")
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" applies n0's delayed delta", func() bool {
			v, ok := shards[obs].Views().Get("n0")
			return ok && v.Generation == gen && v.Value["cpu"] == 7 && shards[obs].Metrics().DeltasReceived == received[obs]+1
		})
	}
}

func testSingleTargetSend(t *testing.T, newRuntime func(*testing.T) dstate.ActorRuntime) {
	c := threeNodes(t, newRuntime)
	shards := gaugeShards(t, c)
	snapshotsSent := shards["n0"].Metrics().SnapshotsSent
	received := map[dstate.NodeID]uint64{}
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		received[obs] = shards[obs].Metrics().SnapshotsReceived
	}
	_, _, err := shards["n0"].MutateDelta(t.Context(), withUrgency("a", 1, dstate.Suppress))
	require.NoError(t, err)
	require.Equal(t, uint64(1), shards["n0"].Metrics().DeltasSuppressed, "suppressed mutations of n0")
	gen, _, err := shards["n0"].MutateDelta(t.Context(), dstatetest.Set("b", 2))
	require.NoError(t, err)
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" catches up with n0 through its own snapshot", func() bool {
			v, ok := shards[obs].Views().Get("n0")
			return ok && v.Generation == gen && v.Value["a"] == 1 && v.Value["b"] == 2 &&
				shards[obs].Metrics().SnapshotsReceived > received[obs]
		})
	}
	// Each peer got an answer of its own: the owner built one snapshot per
	// requester.
	require.GreaterOrEqual(t, shards["n0"].Metrics().SnapshotsSent, snapshotsSent+2, "snapshots n0 sent to single targets")
}

// cluster is three nodes in one process over real loopback TCP, on one
// runtime, with a shared, hand-driven membership feed.
// Cluster is a hand-driven test cluster of pkg/node nodes in one process:
// each node has its own pkg/transport TCP transport on loopback, and all
// share one runtime and one membership feed that the test drives. Its
// fields may be read and, before Start, changed.
type Cluster struct {
	// T is the test the cluster fails.
	T testing.TB
	// Name is the transport's cluster name ("nodetest").
	Name string
	// Runtime runs every node's actors.
	Runtime dstate.ActorRuntime
	// Events is the membership feed every node subscribes to.
	Events *dstatetest.TestClusterEvents
	// Nodes are the running nodes, Transports their transports, and Addrs
	// the transport address each node had last (a restarted node binds it
	// again).
	Nodes      map[dstate.NodeID]*node.Node
	Transports map[dstate.NodeID]*transport.Transport
	Addrs      map[dstate.NodeID]string
	// Stores are given to every node started after they are set.
	Stores map[dstate.Durability]dstate.EnvelopeStore
}

// NewCluster returns an empty cluster on rt whose nodes are closed when t
// ends. Release rt with a t.Cleanup registered before this call, so that
// the nodes close first.
func NewCluster(t testing.TB, rt dstate.ActorRuntime) *Cluster {
	t.Helper()
	require.NotNil(t, rt, "nil runtime")
	c := &Cluster{T: t, Name: "nodetest", Runtime: rt, Events: dstatetest.NewTestClusterEvents(),
		Nodes: map[dstate.NodeID]*node.Node{}, Transports: map[dstate.NodeID]*transport.Transport{}, Addrs: map[dstate.NodeID]string{}}
	t.Cleanup(func() {
		for id := range c.Nodes {
			c.Stop(id)
		}
	})
	return c
}

// threeNodes starts n0, n1 and n2 on a fresh runtime without announcing
// them, and closes them when t ends (before the runtime is released).
func threeNodes(t *testing.T, newRuntime func(*testing.T) dstate.ActorRuntime) *Cluster {
	t.Helper()
	c := NewCluster(t, newRuntime(t))
	for _, id := range []dstate.NodeID{"n0", "n1", "n2"} {
		c.Start(id)
	}
	return c
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Start starts node id (on its previous address if it had one) without
// announcing it.
func (c *Cluster) Start(id dstate.NodeID) *node.Node {
	c.T.Helper()
	tcfg := transport.DefaultConfig()
	tcfg.NodeID = id
	tcfg.ClusterName = c.Name
	tcfg.ReconnectBackoffMin = 10 * time.Millisecond
	tcfg.ReconnectBackoffMax = 100 * time.Millisecond
	tcfg.Logger = quietLogger()
	if a := c.Addrs[id]; a != "" {
		tcfg.BindAddr = a
	}
	tr, err := transport.New(tcfg)
	require.NoError(c.T, err, "transport of %s", id)
	n, err := node.New(node.Config{ID: id, Runtime: c.Runtime, Events: c.Events, Transport: tr, Logger: quietLogger(),
		FeedInterval: 20 * time.Millisecond, Stores: c.Stores})
	require.NoError(c.T, err, "node %s", id)
	c.Nodes[id] = n
	c.Transports[id] = tr
	c.Addrs[id] = n.Addr()
	return n
}

// Join announces node id, with its transport address, to every node (a
// node ignores its own announcement).
func (c *Cluster) Join(id dstate.NodeID) {
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: id,
		Tags: map[string]string{node.TransportTag: c.Addrs[id]}})
}

// JoinAll announces every running node.
func (c *Cluster) JoinAll() {
	for _, id := range c.IDs() {
		c.Join(id)
	}
}

// IDs returns the running nodes' IDs, sorted.
func (c *Cluster) IDs() []dstate.NodeID {
	return slices.Sorted(maps.Keys(c.Nodes))
}

// Stop closes node id without telling the others (a crash, as far as they
// know).
func (c *Cluster) Stop(id dstate.NodeID) {
	c.T.Helper()
	n := c.Nodes[id]
	if n == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeWithin)
	defer cancel()
	require.NoError(c.T, n.Close(ctx), "close %s", id)
	delete(c.Nodes, id)
}

// CounterShard is a node's shard of the example counter state.
type CounterShard = node.Shard[dstatetest.Counter, dstatetest.Counter]

// RegisterCounters registers the example counter state with cfg on every
// running node.
func RegisterCounters(t testing.TB, c *Cluster, cfg dstate.StateConfig) map[dstate.NodeID]*CounterShard {
	t.Helper()
	out := map[dstate.NodeID]*CounterShard{}
	for id, n := range c.Nodes {
		s, err := node.Register(context.Background(), n, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Config: cfg})
		require.NoError(t, err, "register counter on %s", id)
		out[id] = s
	}
	return out
}

// CounterOf returns what s holds of owner's counter, once it holds a
// generation of it.
func CounterOf(s *CounterShard, owner dstate.NodeID) (dstatetest.Counter, dstate.Generation, bool) {
	v, ok := s.Views().Get(owner)
	if !ok || v.Generation.IsZero() {
		return dstatetest.Counter{}, dstate.Generation{}, false
	}
	return v.Value, v.Generation, true
}

// eventually polls cond until it holds, failing t after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, waitFor, pollEvery, what)
}
