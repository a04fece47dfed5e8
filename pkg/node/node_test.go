package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var ctx = context.Background()

func TestActivePushReplicatesToEveryNode(t *testing.T) {
	c := threeNodes(t)
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	gen, view, err := shards["n0"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 7; s.Label = "seven" })
	require.NoError(t, err)
	require.Equal(t, uint64(1), gen.Age, "got age %d, want 1", gen.Age)
	require.Equal(t, int64(7), view.Count)
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" sees n0's counter", func() bool {
			v, g, ok := counterOf(shards[obs], "n0")
			return ok && v.Count == 7 && g == gen
		})
	}
	m := shards["n0"].Metrics()
	require.GreaterOrEqual(t, m.SnapshotsSent, uint64(1))
}

func TestDeltaStateReplicatesDeltas(t *testing.T) {
	c := threeNodes(t)
	shards := registerGauges(t, c)
	c.JoinAll()
	// Wait for the join exchange so the following deltas apply in order.
	eventually(t, "joined views", func() bool {
		v, ok := shards["n1"].Views().Get("n0")
		return ok && !v.Generation.IsZero()
	})
	for i := range int64(20) {
		_, _, err := shards["n0"].MutateDelta(ctx, dstatetest.Set("cpu", i))
		require.NoError(t, err)
	}
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" applies n0's deltas", func() bool {
			v, ok := shards[obs].Views().Get("n0")
			return ok && v.Value["cpu"] == 19 && v.Generation.Age == 20
		})
	}
	require.Equal(t, uint64(20), shards["n0"].Metrics().DeltasSent)
	require.GreaterOrEqual(t, shards["n1"].Metrics().DeltasReceived, uint64(1))
}

func TestFeedLazyPullMarksStaleThenQueryPulls(t *testing.T) {
	c := threeNodes(t)
	cfg := dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy(), PullTimeout: 5 * time.Second}
	cfg.SyncStrategy.ChangeFeed.BatchInterval = 20 * time.Millisecond
	shards := registerCounters(t, c, cfg)
	c.JoinAll()
	eventually(t, "join exchange", func() bool { _, _, ok := counterOf(shards["n1"], "n0"); return ok })
	gen, _, err := shards["n0"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 42 })
	require.NoError(t, err)
	eventually(t, "n1 learns of n0's change from the feed", func() bool {
		v, _ := shards["n1"].Views().Get("n0")
		return v.Pending == gen
	})
	v, _ := shards["n1"].Views().Get("n0")
	require.Equal(t, int64(0), v.Value.Count, "the feed carries no data; got %d", v.Value.Count)
	var got int64
	err = shards["n1"].Query(ctx, time.Minute, func(vs dstate.Views[dstatetest.Counter]) {
		v, _ := vs.Get("n0")
		got = v.Value.Count
	})
	require.NoError(t, err)
	require.Equal(t, int64(42), got, "got %d after the pull, want 42", got)
}

func TestPeriodicOnlySyncs(t *testing.T) {
	c := threeNodes(t)
	shards := registerCounters(t, c, dstate.StateConfig{SyncStrategy: dstate.PeriodicOnlyStrategy(30 * time.Millisecond)})
	c.JoinAll()
	_, _, err := shards["n2"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 5 })
	require.NoError(t, err)
	require.Equal(t, uint64(1), shards["n2"].Metrics().DeltasSuppressed, "a Default change sends nothing without push")
	eventually(t, "periodic sync reaches n0", func() bool { v, _, ok := counterOf(shards["n0"], "n2"); return ok && v.Count == 5 })
}

func TestRestartedPeerCatchesUp(t *testing.T) {
	c := threeNodes(t)
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	eventually(t, "join exchange", func() bool { _, _, ok := counterOf(shards["n0"], "n2"); return ok })
	_, oldGen, _ := counterOf(shards["n0"], "n2")

	c.Stop("n2") // its listener is gone; n0 keeps trying to reach it
	_, _, err := shards["n0"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 99 })
	require.NoError(t, err)

	n2 := c.Start("n2") // same address, new incarnation
	s2, err := node.Register(ctx, n2, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{})
	require.NoError(t, err)
	shards["n2"] = s2
	c.JoinAll()
	eventually(t, "restarted n2 catches up with n0", func() bool { v, _, ok := counterOf(s2, "n0"); return ok && v.Count == 99 })
	eventually(t, "n0 sees n2's new incarnation", func() bool {
		_, g, ok := counterOf(shards["n0"], "n2")
		return ok && g.Incarnation > oldGen.Incarnation
	})
}

func TestBlockingQueryNamesTheDeadPeer(t *testing.T) {
	c := threeNodes(t)
	cfg := dstate.DefaultStateConfig()
	cfg.PullTimeout = 300 * time.Millisecond
	shards := registerCounters(t, c, cfg)
	c.JoinAll()
	eventually(t, "join exchange", func() bool {
		_, _, a := counterOf(shards["n1"], "n0")
		_, _, b := counterOf(shards["n1"], "n2")
		return a && b
	})
	c.Stop("n2")
	qctx, cancel := context.WithTimeout(ctx, 20*cfg.PullTimeout)
	defer cancel()
	called := false
	err := shards["n1"].Query(qctx, 0, func(dstate.Views[dstatetest.Counter]) { called = true })
	require.True(t, called, "the query's function runs even when peers are stale")
	var qe *dstate.QueryError
	require.ErrorAs(t, err, &qe, "got %v, want a *dstate.QueryError", err)
	require.ErrorIs(t, err, dstate.ErrStalePeer)
	var names []dstate.NodeID
	for _, p := range qe.Peers {
		names = append(names, p.Node)
	}
	require.Equal(t, []dstate.NodeID{"n2"}, names, "got stale peers %v, want only the dead n2", names)
	require.NoError(t, qctx.Err(), "the query must return at the pull timeout, not the context's deadline")
}

func TestFailingPersistenceRollsBack(t *testing.T) {
	c := threeNodes(t)
	store := dstatetest.NewInMemoryPersistence[dstatetest.Counter]()
	s0, err := node.Register(ctx, c.Nodes["n0"], dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Persistence: store})
	require.NoError(t, err)
	s1, err := node.Register(ctx, c.Nodes["n1"], dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{})
	require.NoError(t, err)
	c.Join("n0")
	c.Join("n1")
	gen1, _, err := s0.Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 1 })
	require.NoError(t, err)
	eventually(t, "n1 sees the saved mutation", func() bool { v, _, ok := counterOf(s1, "n0"); return ok && v.Count == 1 })

	store.FailWhen(func(*dstate.StateObject[dstatetest.Counter]) error { return errors.New("disk full") })
	gen, _, err := s0.Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 2 })
	var me *dstate.MutationError
	require.ErrorAs(t, err, &me)
	require.ErrorIs(t, err, dstate.ErrPersistenceFailed)
	require.Equal(t, gen1, gen, "got generation %s after a failed save, want %s", gen, gen1)
	own, _ := s0.Views().Get("n0")
	require.Equal(t, int64(1), own.Value.Count, "the failed mutation must not be visible")
	require.Equal(t, gen1, s0.Generation())

	store.FailWhen(nil)
	gen3, view, err := s0.Mutate(ctx, func(s *dstatetest.Counter) { s.Count += 10 })
	require.NoError(t, err)
	require.Equal(t, int64(11), view.Count, "the rolled-back value is the base of the next mutation")
	require.Equal(t, gen1.Age+1, gen3.Age)
	eventually(t, "n1 sees the next saved mutation", func() bool { v, _, ok := counterOf(s1, "n0"); return ok && v.Count == 11 })
	require.Equal(t, int64(11), store.Stored().Value.Count)
}

func TestRestartFromPersistenceKeepsGenerationOrder(t *testing.T) {
	c := threeNodes(t)
	store := dstatetest.NewInMemoryPersistence[dstatetest.Counter]()
	s0, err := node.Register(ctx, c.Nodes["n0"], dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Persistence: store})
	require.NoError(t, err)
	s1, err := node.Register(ctx, c.Nodes["n1"], dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{})
	require.NoError(t, err)
	c.Join("n0")
	c.Join("n1")
	var last dstate.Generation
	for i := range int64(3) {
		last, _, err = s0.Mutate(ctx, func(s *dstatetest.Counter) { s.Count = i + 1 })
		require.NoError(t, err)
	}
	eventually(t, "n1 sees age 3", func() bool { _, g, ok := counterOf(s1, "n0"); return ok && g == last })

	c.Stop("n0")
	n0 := c.Start("n0")
	s0, err = node.Register(ctx, n0, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Persistence: store})
	require.NoError(t, err)
	require.Equal(t, last, s0.Generation(), "got %s after restart, want the stored %s", s0.Generation(), last)
	own, _ := s0.Views().Get("n0")
	require.Equal(t, int64(3), own.Value.Count)
	c.JoinAll()
	next, _, err := s0.Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 4 })
	require.NoError(t, err)
	require.True(t, last.Less(next), "got %s, want after %s", next, last)
	eventually(t, "n1 accepts the restarted node's next generation", func() bool {
		v, g, ok := counterOf(s1, "n0")
		return ok && g == next && v.Count == 4
	})
}

func TestUnreadablePersistedStateStartsANewerIncarnation(t *testing.T) {
	c := newTestCluster(t)
	n := c.Start("n0")
	stored := dstate.Generation{Incarnation: 1 << 62, Age: 9}
	p := unreadable{stored: stored}
	s, err := node.Register(ctx, n, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Persistence: p})
	require.NoError(t, err)
	g := s.Generation()
	require.Greater(t, g.Incarnation, stored.Incarnation, "got %s, want an incarnation above the stored %s", g, stored)
	require.Zero(t, g.Age)
}

type unreadable struct{ stored dstate.Generation }

func (unreadable) Save(context.Context, *dstate.StateObject[dstatetest.Counter], []byte) error {
	return nil
}
func (u unreadable) Load(context.Context) (*dstate.StateObject[dstatetest.Counter], error) {
	return nil, &dstate.PersistError{Kind: dstate.ErrDeserializationFailed, Op: "load", Stored: u.stored}
}

func TestRegisterErrors(t *testing.T) {
	c := newTestCluster(t)
	n := c.Start("n0")
	_, err := node.Register(ctx, n, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{})
	require.NoError(t, err)
	_, err = node.Register(ctx, n, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{})
	require.ErrorIs(t, err, dstate.ErrDuplicateName)
	_, err = node.Register(ctx, n, dstatetest.GaugesState{}, node.StateOptions[dstatetest.Gauges]{Persistence: dstatetest.FailingPersistence[dstatetest.Gauges]{}})
	require.ErrorIs(t, err, dstate.ErrPersistenceFailed, "a load that cannot reach storage must fail registration")
	require.Equal(t, []string{"counter"}, n.States())
}

func TestLeaveDropsViewAndHealth(t *testing.T) {
	c := threeNodes(t)
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	eventually(t, "healthy after the join exchange", func() bool {
		h, err := c.Nodes["n0"].Health(ctx, time.Minute)
		return err == nil && h.Status == dstate.Healthy
	})
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeLeft, Node: "n2"})
	eventually(t, "n2's view dropped", func() bool { _, ok := shards["n0"].Views().Get("n2"); return !ok })
	require.Equal(t, []dstate.NodeID{"n1"}, c.Nodes["n0"].Members())
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeFailed, Node: "n1"})
	eventually(t, "n1 failing", func() bool {
		h, err := c.Nodes["n0"].Health(ctx, time.Minute)
		return err == nil && h.States[0].FailingPeers == 1 && h.Status == dstate.Unhealthy
	})
}

func TestInboundGarbageIsCountedNotFatal(t *testing.T) {
	c := threeNodes(t)
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	eventually(t, "join exchange", func() bool { return shards["n0"].Views().Len() == 3 })

	tcfg := transport.DefaultConfig()
	tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = "intruder", "test", quietLogger()
	raw, err := transport.New(tcfg)
	require.NoError(t, err)
	require.NoError(t, raw.Start(func(dstate.NodeID, []byte) {}))
	t.Cleanup(func() { _ = raw.Close(ctx) })
	raw.SetPeer("n0", c.Addrs["n0"])
	require.NoError(t, raw.Send("n0", []byte{0xff, 0x00, 0x01}))
	require.NoError(t, raw.Send("n0", dstate.EncodeWire(&dstate.WireMessage{Kind: dstate.KindRequestSnapshot, State: "nope", Source: "intruder"})))
	require.NoError(t, raw.Send("n0", dstate.EncodeWire(&dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "counter", Source: "n1",
		Generation: dstate.Generation{Incarnation: 1 << 60, Age: 1}, WireVersion: 1, Data: []byte{2, 0}})))
	eventually(t, "garbage counted", func() bool {
		st := c.Nodes["n0"].Stats()
		return st.DecodeErrors == 1 && st.UnknownState == 1 && st.SourceMismatch == 1
	})
	_, g, _ := counterOf(shards["n0"], "n1")
	require.NotEqual(t, uint64(1<<60), g.Incarnation, "a spoofed snapshot must not be applied")
	// The node still works.
	_, _, err = shards["n0"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 3 })
	require.NoError(t, err)
	eventually(t, "replication continues", func() bool { v, _, ok := counterOf(shards["n1"], "n0"); return ok && v.Count == 3 })
}

func TestDurabilityNeedsAConfiguredStore(t *testing.T) {
	c := newTestCluster(t)
	n := c.Start("n0")
	_, err := node.Register(ctx, n, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{
		Config: dstate.StateConfig{Durability: dstate.Raft}})
	require.ErrorContains(t, err, `state "counter" wants raft durability, but node "n0" has no raft store configured`)
	require.Empty(t, n.States(), "a refused state is not registered")
}

func TestLocalDurabilityRestoresAfterRestart(t *testing.T) {
	c := newTestCluster(t)
	c.Stores = map[dstate.Durability]dstate.EnvelopeStore{dstate.Local: dstatetest.NewEnvelopeStore()}
	cfg := dstate.StateConfig{Durability: dstate.Local}
	s, err := node.Register(ctx, c.Start("n0"), dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Config: cfg})
	require.NoError(t, err)
	require.Equal(t, dstate.ActivePush, s.Config().SyncStrategy.PushMode, "a zero strategy means active push")
	gen, _, err := s.Mutate(ctx, func(c *dstatetest.Counter) { c.Count = 11 })
	require.NoError(t, err)
	c.Stop("n0")

	s, err = node.Register(ctx, c.Start("n0"), dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Config: cfg})
	require.NoError(t, err)
	v, g, ok := counterOf(s, "n0")
	require.True(t, ok)
	require.Equal(t, int64(11), v.Count, "restored value")
	require.Equal(t, gen, g, "restored generation")
	next, _, err := s.Mutate(ctx, func(c *dstatetest.Counter) { c.Count++ })
	require.NoError(t, err)
	require.True(t, gen.Less(next), "generation order continues: %s then %s", gen, next)
}

func TestReapedNodeIsForgotten(t *testing.T) {
	c := threeNodes(t)
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	eventually(t, "join exchange", func() bool { return shards["n0"].Views().Len() == 3 })
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeLeft, Node: "n2"})
	eventually(t, "n2 departed", func() bool { _, ok := shards["n0"].Views().Get("n2"); return !ok })
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeReaped, Node: "n2"})
	eventually(t, "n2 forgotten: its peer status is gone", func() bool {
		ps, err := shards["n0"].PeerStatuses(ctx)
		if err != nil {
			return false
		}
		for _, p := range ps {
			if p.Node == "n2" {
				return false
			}
		}
		return true
	})
	require.Equal(t, []dstate.NodeID{"n1"}, c.Nodes["n0"].Members())
}

func TestFencedSaveAdoptsTheStoredState(t *testing.T) {
	c := newTestCluster(t)
	store := dstatetest.NewEnvelopeStore()
	c.Stores = map[dstate.Durability]dstate.EnvelopeStore{dstate.Local: store}
	s, err := node.Register(ctx, c.Start("n0"), dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Config: dstate.StateConfig{Durability: dstate.Local}})
	require.NoError(t, err)
	g0 := s.Generation()
	// A save whose outcome the node never learned landed: the store is ahead.
	landed := dstate.Generation{Incarnation: g0.Incarnation, Age: 1}
	data, err := dstatetest.CounterState{}.EncodeState(dstatetest.Counter{Count: 99})
	require.NoError(t, err)
	require.NoError(t, store.SaveEnvelope(ctx, dstate.StoredEnvelope{State: "counter", Node: "n0", Generation: landed, StorageVersion: 1, Data: data}))

	_, _, err = s.Mutate(ctx, func(c *dstatetest.Counter) { c.Count = 1 })
	require.ErrorIs(t, err, dstate.ErrPersistenceFailed, "the save is fenced")
	v, g, ok := counterOf(s, "n0")
	require.True(t, ok)
	require.Equal(t, landed, g, "the committed generation is adopted")
	require.Equal(t, int64(99), v.Count, "with its value")

	gen, view, err := s.Mutate(ctx, func(c *dstatetest.Counter) { c.Count++ })
	require.NoError(t, err, "the next save goes through")
	require.Equal(t, int64(100), view.Count, "it builds on the committed value")
	require.Equal(t, dstate.Generation{Incarnation: g0.Incarnation, Age: 2}, gen)
	env, err := store.LoadEnvelope(ctx, "counter", "n0")
	require.NoError(t, err)
	require.Equal(t, gen, env.Generation)
}

func TestQueryDurableReadsEveryNodesCommittedState(t *testing.T) {
	c := newTestCluster(t)
	shared := dstatetest.NewEnvelopeStore()
	c.Stores = map[dstate.Durability]dstate.EnvelopeStore{dstate.Raft: shared, dstate.Local: dstatetest.NewEnvelopeStore()}
	shards := map[dstate.NodeID]*counterShard{}
	for _, id := range []dstate.NodeID{"n0", "n1"} {
		s, err := node.Register(ctx, c.Start(id), dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Config: dstate.StateConfig{Durability: dstate.Raft}})
		require.NoError(t, err)
		shards[id] = s
	}
	g0, _, err := shards["n0"].Mutate(ctx, func(c *dstatetest.Counter) { c.Count = 10 })
	require.NoError(t, err)
	g1, _, err := shards["n1"].Mutate(ctx, func(c *dstatetest.Counter) { c.Count = 11 })
	require.NoError(t, err)
	// No membership events: the views know nothing of each other, the
	// durable read still sees both.
	var got map[dstate.NodeID]*dstate.StateObject[dstatetest.Counter]
	require.NoError(t, shards["n0"].QueryDurable(ctx, func(m map[dstate.NodeID]*dstate.StateObject[dstatetest.Counter]) { got = m }))
	require.Len(t, got, 2)
	require.Equal(t, int64(10), got["n0"].Value.Count)
	require.Equal(t, g0, got["n0"].Generation)
	require.Equal(t, int64(11), got["n1"].Value.Count)
	require.Equal(t, g1, got["n1"].Generation)

	local, err := node.Register(ctx, c.Start("n2"), dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Config: dstate.StateConfig{Durability: dstate.Local}})
	require.NoError(t, err)
	err = local.QueryDurable(ctx, func(map[dstate.NodeID]*dstate.StateObject[dstatetest.Counter]) { t.Error("fn called") })
	require.ErrorIs(t, err, node.ErrNotDurable)
	require.ErrorContains(t, err, `state "counter" has local durability`)
}
