package dstate_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// failedNodes returns the nodes of FailedPeers.
func failedNodes(e interface{ FailedPeers() []dstate.StalePeer }) []dstate.NodeID {
	var out []dstate.NodeID
	for _, f := range e.FailedPeers() {
		out = append(out, f.Node)
	}
	return out
}

func wantNodes(tb testing.TB, what string, got []dstate.NodeID, want ...dstate.NodeID) {
	tb.Helper()
	if !slices.Equal(got, want) {
		tb.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// twoPeers returns an engine with fresh views of n2 and n3, a pull timeout
// of one second and pull on query.
func twoPeers(t *testing.T) (*counterEngine, *dstatetest.TestClock) {
	t.Helper()
	cfg := dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy(), PullTimeout: time.Second}
	e, clock := newCounterEngine(t, cfg)
	e.HandleWire(counterSnapshot("n2", gen(peerInc, 2), 2))
	e.HandleWire(counterSnapshot("n3", gen(peerInc, 3), 3))
	return e, clock
}

func TestFailedPeerIsNamedAndNotPulled(t *testing.T) {
	e, clock := twoPeers(t)
	e.OnNodeFailed("n3")
	wantNodes(t, "failed peers", failedNodes(e), "n3")
	if r := e.Query(time.Hour); !r.Fresh() || len(r.Failed) != 0 {
		t.Errorf("query while every view is fresh: stale %v failed %v, want none (a failed peer's fresh view is not named)", r.Stale, r.Failed)
	}
	clock.Advance(2 * time.Second)
	r := e.Query(time.Second)
	wantNodes(t, "stale", r.Stale, "n2", "n3")
	wantNodes(t, "failed", r.Failed, "n3")
	wantNodes(t, "waiting", r.Waiting(), "n2")
	wantActions(t, r.Actions, "send(n2, RequestSnapshot(counter by n1))")
	if want := clock.Now().Add(time.Second); !r.WaitUntil.Equal(want) {
		t.Errorf("wait until %v, want the request's expiry %v", r.WaitUntil, want)
	}
	if v := view(t, e.Views(), "n3"); v.Value.Count != 3 {
		t.Errorf("the failed peer's last view: %+v, want count 3", v.Value)
	}
	wantActions(t, e.Pull([]dstate.NodeID{"n3"}))
	if s := peerStatus(t, e.PeerStatuses(), "n3"); !strings.Contains(s.Failed, "failed") {
		t.Errorf("peer status of n3: Failed %q, want the membership reason", s.Failed)
	}
	h := e.Health(time.Second)
	if want := (dstate.EngineHealth{State: "counter", StalePeers: 2, FailingPeers: 1, Status: dstate.Unhealthy}); h != want {
		t.Errorf("health: got %+v, want %+v", h, want)
	}
}

func TestOnlyFailedPeersStaleNeedsNoWait(t *testing.T) {
	e, clock := twoPeers(t)
	e.OnNodeFailed("n3")
	clock.Advance(2 * time.Second)
	e.HandleWire(counterSnapshot("n2", gen(peerInc, 2), 2)) // renews n2
	r := e.PullQuery(time.Second)
	wantNodes(t, "stale", r.Stale, "n3")
	wantNodes(t, "failed", r.Failed, "n3")
	wantActions(t, r.Actions)
	if !r.WaitUntil.IsZero() || len(r.Waiting()) != 0 {
		t.Errorf("wait until %v for %v, want nothing to wait for", r.WaitUntil, r.Waiting())
	}
}

func TestUnresponsivePeerIsRemembered(t *testing.T) {
	e, clock := twoPeers(t)
	clock.Advance(2 * time.Second)
	e.HandleWire(counterSnapshot("n3", gen(peerInc, 3), 3))
	r := e.PullQuery(time.Second)
	wantActions(t, r.Actions, "send(n2, RequestSnapshot(counter by n1))")
	wantNodes(t, "failed before the timeout", r.Failed)

	clock.Advance(time.Second - 1)
	if r := e.PullQuery(time.Second); len(r.Failed) != 0 || len(r.Actions) != 0 {
		t.Errorf("within the pull timeout: failed %v actions %v, want none (the request is outstanding)", r.Failed, describe(r.Actions))
	}
	clock.Advance(1)
	r = e.PullQuery(time.Second)
	wantNodes(t, "failed once the request expired", r.Failed, "n2")
	// Asked again, so that it can answer, but not waited for.
	wantActions(t, r.Actions, "send(n2, RequestSnapshot(counter by n1))")
	if !r.WaitUntil.IsZero() {
		t.Errorf("wait until %v, want zero: nothing to wait for", r.WaitUntil)
	}
	wantNodes(t, "failed peers", failedNodes(e), "n2")
	if s := peerStatus(t, e.PeerStatuses(), "n2"); !strings.Contains(s.Failed, "pull timeout") {
		t.Errorf("peer status: Failed %q, want the unanswered request", s.Failed)
	}
	r = e.PullQuery(time.Second)
	wantNodes(t, "failed on the next query", r.Failed, "n2")
	wantActions(t, r.Actions)

	// Anything from the peer clears the mark.
	e.HandleWire(request("counter", "n2"))
	wantNodes(t, "failed peers after n2 spoke", failedNodes(e))
	if r := e.PullQuery(time.Second); len(r.Failed) != 0 || !slices.Equal(r.Waiting(), []dstate.NodeID{"n2"}) {
		t.Errorf("after n2 spoke: failed %v waiting %v, want n2 waited for again", r.Failed, r.Waiting())
	}
}

func TestHealthAgreesWithQuery(t *testing.T) {
	e, clock := twoPeers(t)
	e.HandleWire(counterSnapshot("n4", gen(peerInc, 4), 4))
	e.OnNodeFailed("n3")
	clock.Advance(2 * time.Second)
	e.HandleWire(counterSnapshot("n4", gen(peerInc, 4), 4))
	r := e.Query(time.Second)
	h := e.Health(time.Second)
	if h.StalePeers != len(r.Stale) || h.HealthyPeers != 3-len(r.Stale) {
		t.Errorf("health %+v against query stale %v failed %v", h, r.Stale, r.Failed)
	}
	if h.FailingPeers != len(r.Failed) {
		t.Errorf("health counts %d failing, query names %v failed", h.FailingPeers, r.Failed)
	}
}

func TestQueryErrorMatchesPeerFailed(t *testing.T) {
	stale := &dstate.QueryError{Kind: dstate.ErrStalePeer, State: "counter", Peers: []dstate.StalePeer{{Node: "n2", Reason: "slow"}}}
	failed := &dstate.QueryError{Kind: dstate.ErrStalePeer, State: "counter",
		Peers: []dstate.StalePeer{{Node: "n2", Reason: "slow"}, {Node: "n3", Reason: "membership reports it failed"}}, Failed: []dstate.NodeID{"n3"}}
	var err error = failed
	if !errors.Is(err, dstate.ErrStalePeer) || !errors.Is(err, dstate.ErrPeerFailed) {
		t.Errorf("%v: want both ErrStalePeer and ErrPeerFailed", err)
	}
	if errors.Is(stale, dstate.ErrPeerFailed) {
		t.Errorf("%v matches ErrPeerFailed without a failed peer", stale)
	}
	wantNodes(t, "stale nodes", failed.StaleNodes(), "n2")
}

// A receiver at age 5 that gets ages 7, 6 and 8 at one instant sends one
// snapshot request: applying 6 does not answer the request made for 7.
func TestGappedBurstCostsOneRequest(t *testing.T) {
	e, clock := newGaugesEngine(t, dstate.StateConfig{PullTimeout: time.Second})
	e.HandleWire(gaugesSnapshot("n2", gen(peerInc, 5), dstatetest.GaugesView{"a": 5}))
	req := "send(n2, RequestSnapshot(gauges by n1))"
	wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 7), "a", 7)), req)
	wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 6), "a", 6)))
	wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 8), "a", 8)))
	if got := e.Metrics().SnapshotRequestsSent; got != 1 {
		t.Errorf("snapshot requests: got %d, want 1", got)
	}
	// Unanswered, the request expires after the pull timeout.
	clock.Advance(time.Second)
	wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 9), "a", 9)), req)
	// A snapshot answers it: the next gap asks at once.
	e.HandleWire(gaugesSnapshot("n2", gen(peerInc, 9), dstatetest.GaugesView{"a": 9}))
	wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 11), "a", 11)), req)
}

func TestRejoinAfterFailureMarksViewStale(t *testing.T) {
	t.Run("join", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 3), 3))
		e.OnNodeFailed("n2")
		e.OnNodeJoined("n2")
		r := e.Query(time.Hour)
		wantNodes(t, "stale after the rejoin", r.Stale, "n2")
		wantNodes(t, "failed after the rejoin", r.Failed)
		if v := view(t, e.Views(), "n2"); v.Value.Count != 3 {
			t.Errorf("the previous view stays readable: %+v", v.Value)
		}
		e.HandleWire(counterSnapshot("n2", gen(peerInc+1, 0), 0))
		if r := e.Query(time.Hour); !r.Fresh() {
			t.Errorf("stale %v after the new incarnation's snapshot, want fresh", r.Stale)
		}
	})
	t.Run("the same generation confirms it", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 3), 3))
		e.OnNodeFailed("n2")
		e.OnNodeJoined("n2")
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 3), 3))
		if r := e.Query(time.Hour); !r.Fresh() {
			t.Errorf("stale %v after a snapshot of the generation held, want fresh", r.Stale)
		}
	})
	t.Run("a message before the join", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 3), 3))
		e.OnNodeFailed("n2")
		e.HandleWire(request("counter", "n2"))
		wantNodes(t, "failed peers once n2 spoke", failedNodes(e))
		wantNodes(t, "stale once n2 spoke", e.Query(time.Hour).Stale, "n2")
	})
	t.Run("a join without a failure keeps the view fresh", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 3), 3))
		e.OnNodeJoined("n2")
		wantNodes(t, "stale", e.Query(time.Hour).Stale)
	})
}

func TestDroppedViewCountsInHealth(t *testing.T) {
	e, _ := newCounterEngine(t, dstate.StateConfig{VersionMismatchPolicy: dstate.DropAndWait})
	e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
	m := counterSnapshot("n2", gen(peerInc, 6), 6)
	m.WireVersion = 2
	e.HandleWire(m)
	wantNoView(t, e.Views(), "n2")
	h := e.Health(time.Hour)
	if want := (dstate.EngineHealth{State: "counter", StalePeers: 1, FailingPeers: 1, Status: dstate.Unhealthy}); h != want {
		t.Errorf("health: got %+v, want %+v", h, want)
	}
	s := peerStatus(t, e.PeerStatuses(), "n2")
	if s.ConsecutiveFailures != 1 || !s.Generation.IsZero() || !strings.Contains(s.Failed, "version mismatch") {
		t.Errorf("peer status: %+v, want one failure, no generation and the mismatch as the reason", s)
	}
	r := e.Query(time.Hour)
	wantNodes(t, "stale", r.Stale, "n2")
	wantNodes(t, "failed", r.Failed, "n2")
	wantNodes(t, "failed peers", failedNodes(e), "n2")
	e.HandleWire(counterSnapshot("n2", gen(peerInc, 7), 7))
	if h := e.Health(time.Hour); h.Status != dstate.Healthy || h.HealthyPeers != 1 {
		t.Errorf("health after a readable snapshot: %+v", h)
	}
	wantNodes(t, "failed peers after recovery", failedNodes(e))
}

func TestZeroStrategyPushes(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  dstate.StateConfig
		want []dstate.ActionKind
	}{
		{"zero StateConfig", dstate.StateConfig{}, []dstate.ActionKind{dstate.ActionBroadcast}},
		{"zero SyncStrategy", dstate.StateConfig{PullTimeout: time.Second}, []dstate.ActionKind{dstate.ActionBroadcast}},
		{"PushNone", dstate.StateConfig{SyncStrategy: dstate.SyncStrategy{PushMode: dstate.PushNone}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newCounterEngine(t, tc.cfg)
			var got []dstate.ActionKind
			for _, a := range e.Mutate(incr, dstate.Default).Actions {
				got = append(got, a.Kind)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("actions of a Default mutation: got %v, want %v", got, tc.want)
			}
		})
	}
	if (dstate.SyncStrategy{}).PushMode != dstate.ActivePush {
		t.Error("the zero PushMode is not ActivePush")
	}
}

func TestUnreadableFirstSnapshotCountsInHealth(t *testing.T) {
	e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
	m := counterSnapshot("n2", gen(peerInc, 1), 1)
	m.Data = []byte{0x02, 0x09}
	e.HandleWire(m)
	wantNoView(t, e.Views(), "n2")
	if h := e.Health(time.Hour); h.StalePeers != 1 || h.FailingPeers != 1 || h.Status != dstate.Unhealthy {
		t.Errorf("health: got %+v, want n2 stale and failing", h)
	}
	wantNodes(t, "failed peers", failedNodes(e), "n2")
	wantNodes(t, "query's failed", e.Query(time.Hour).Failed, "n2")
}
