package node_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// forgedGeneration is far ahead of any generation a node holds.
var forgedGeneration = dstate.Generation{Incarnation: 1 << 62, Age: 1 << 40}

// feedStateConfig is the counter state with the change-feed strategy and a
// pull timeout long enough that a query held by a stale view shows as an
// ErrStalePeer, never as a quick answer.
func feedStateConfig() dstate.StateConfig {
	cfg := dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy(), PullTimeout: 20 * time.Second}
	cfg.SyncStrategy.ChangeFeed.BatchInterval = 20 * time.Millisecond
	return cfg
}

// rawPeer is a bare transport that speaks for itself as id: a member (or
// anyone reaching the port) sending hand-made frames. answer, when set, is
// called with every frame it receives.
func rawPeer(t *testing.T, id dstate.NodeID, answer func(raw *transport.Transport, from dstate.NodeID, m dstate.WireMessage)) *transport.Transport {
	t.Helper()
	tcfg := transport.DefaultConfig()
	tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = id, "test", quietLogger()
	raw, err := transport.New(tcfg)
	require.NoError(t, err)
	require.NoError(t, raw.Start(func(from dstate.NodeID, frame []byte) {
		m, err := dstate.DecodeWireLimits(frame, dstate.DecodeLimits{})
		if err == nil && answer != nil {
			answer(raw, from, m)
		}
	}))
	t.Cleanup(func() { _ = raw.Close(ctx) })
	return raw
}

// counterFrame encodes a counter snapshot of src at g.
func counterFrame(t *testing.T, src dstate.NodeID, g dstate.Generation, count int64) []byte {
	t.Helper()
	data, err := dstatetest.CounterState{}.EncodeState(dstatetest.Counter{Count: count})
	require.NoError(t, err)
	return dstate.EncodeWire(&dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "counter", Source: src, Generation: g,
		WireVersion: 1, CreatedUnixMs: 1, ModifiedUnixMs: 1, Data: data})
}

func feedFrame(from dstate.NodeID, notices ...dstate.ChangeNotification) []byte {
	return dstate.EncodeWire(&dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: from, Notifications: notices})
}

// TestForgedChangeNoticeIsDroppedAndCounted: a peer's change feed naming
// another node with a huge generation is dropped at the node, counted in
// Stats and logged once per interval; the victim's view stays fresh, a
// max_staleness query answers at once, and the victim's real writes go on
// replicating.
func TestForgedChangeNoticeIsDroppedAndCounted(t *testing.T) {
	c := newTestCluster(t)
	var logs syncBuffer
	c.Start("n1")
	n0 := startLogged(t, c, "n0", &logs)
	shards := registerCounters(t, c, feedStateConfig())
	c.JoinAll()
	eventually(t, "join exchange", func() bool { _, _, ok := counterOf(shards["n0"], "n1"); return ok })

	mallory := rawPeer(t, "mallory", nil)
	mallory.SetPeer("n0", n0.Addr())
	forged := feedFrame("mallory", dstate.ChangeNotification{State: "counter", Source: "n1", Generation: forgedGeneration})
	require.NoError(t, mallory.Send("n0", forged))
	require.NoError(t, mallory.Send("n0", forged))
	// Frames of one connection reach the state's actor in order: once
	// mallory's own snapshot is held, the forged feeds were handled.
	require.NoError(t, mallory.Send("n0", counterFrame(t, "mallory", dstate.Generation{Incarnation: 1, Age: 1}, 1)))
	eventually(t, "mallory's snapshot after its feeds", func() bool { _, _, ok := counterOf(shards["n0"], "mallory"); return ok })

	v, ok := shards["n0"].Views().Get("n1")
	require.True(t, ok)
	require.False(t, v.HasPending(), "n1's view marked stale by mallory's notice: pending %s", v.Pending)
	require.Equal(t, uint64(2), n0.Stats().NoticeSourceMismatch, "forged notices counted")
	require.Zero(t, shards["n0"].Metrics().NoticesReceived, "no notice reached the state")
	require.Equal(t, 1, strings.Count(logs.String(), "dropping change notices about other nodes"), "one warning per peer per interval:\n%s", logs.String())
	require.Contains(t, logs.String(), "peer=mallory")

	requests := shards["n0"].Metrics().SnapshotRequestsSent
	require.NoError(t, shards["n0"].Query(ctx, time.Hour, func(dstate.Views[dstatetest.Counter]) {}), "query at max_staleness 1h")
	require.Equal(t, requests, shards["n0"].Metrics().SnapshotRequestsSent, "a fresh query pulls nobody")

	// n1's real write is announced, pulled and read.
	_, _, err := shards["n1"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 7 })
	require.NoError(t, err)
	eventually(t, "n0 learns of n1's write", func() bool { v, _ := shards["n0"].Views().Get("n1"); return v.HasPending() })
	var got int64
	require.NoError(t, shards["n0"].Query(ctx, time.Hour, func(vs dstate.Views[dstatetest.Counter]) {
		v, _ := vs.Get("n1")
		got = v.Value.Count
	}))
	require.Equal(t, int64(7), got, "n1's count after the pull")
}

// TestOwnersTooHighNoticeIsClearedByItsAnswer: a member announcing a
// generation far ahead of its own state marks its view stale only until it
// answers the pull; the answer clears the pending generation, the query
// answers without error, and the notice is counted and logged.
func TestOwnersTooHighNoticeIsClearedByItsAnswer(t *testing.T) {
	c := newTestCluster(t)
	var logs syncBuffer
	n0 := startLogged(t, c, "n0", &logs)
	s0, err := node.Register(ctx, n0, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Config: feedStateConfig()})
	require.NoError(t, err)

	// m owns a counter at generation 1:3 and answers every snapshot request
	// with it, however high a generation it announced.
	held := dstate.Generation{Incarnation: 1, Age: 3}
	snapshot := counterFrame(t, "m", held, 3)
	m := rawPeer(t, "m", func(raw *transport.Transport, from dstate.NodeID, msg dstate.WireMessage) {
		if msg.Kind == dstate.KindRequestSnapshot && msg.State == "counter" {
			_ = raw.Send(from, snapshot)
		}
	})
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: "m", Tags: map[string]string{node.TransportTag: m.Addr()}})
	m.SetPeer("n0", n0.Addr())
	require.NoError(t, m.Send("n0", snapshot))
	require.NoError(t, m.Send("n0", feedFrame("m", dstate.ChangeNotification{State: "counter", Source: "m", Generation: forgedGeneration})))
	eventually(t, "n0 marks m's view stale", func() bool {
		v, ok := s0.Views().Get("m")
		return ok && v.Pending == forgedGeneration
	})

	var got int64
	require.NoError(t, s0.Query(ctx, time.Hour, func(vs dstate.Views[dstatetest.Counter]) {
		v, _ := vs.Get("m")
		got = v.Value.Count
	}), "query at max_staleness 1h after m's answer")
	require.Equal(t, int64(3), got)
	v, _ := s0.Views().Get("m")
	require.Equal(t, held, v.Generation)
	require.False(t, v.HasPending(), "pending %s after m's answer", v.Pending)
	require.Equal(t, uint64(1), s0.Metrics().NoticesOverruled)
	require.Contains(t, logs.String(), "a change notice announced a generation its owner's answer did not have")
	require.Contains(t, logs.String(), "peer=m")
}

// startLogged starts node id in c with its log written to logs.
func startLogged(t *testing.T, c *testCluster, id dstate.NodeID, logs *syncBuffer) *node.Node {
	t.Helper()
	tcfg := transport.DefaultConfig()
	tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = id, c.Name, quietLogger()
	tr, err := transport.New(tcfg)
	require.NoError(t, err)
	n, err := node.New(node.Config{ID: id, Runtime: c.Runtime, Events: c.Events, Transport: tr,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), FeedInterval: 20 * time.Millisecond, LogInterval: time.Hour})
	require.NoError(t, err)
	c.Nodes[id], c.Transports[id], c.Addrs[id] = n, tr, n.Addr()
	return n
}
