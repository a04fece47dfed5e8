package dstate_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

type (
	counterEngine = dstate.Engine[dstatetest.Counter, dstatetest.Counter]
	gaugesEngine  = dstate.DeltaEngine[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]
)

const (
	self    dstate.NodeID = "n1"
	peerInc uint64        = 500_000 // the incarnation of the peers' messages
	ownInc  uint64        = dstatetest.DefaultBaseUnixMs
)

func gen(inc, age uint64) dstate.Generation { return dstate.Generation{Incarnation: inc, Age: age} }

func newCounterEngine(tb testing.TB, cfg dstate.StateConfig) (*counterEngine, *dstatetest.TestClock) {
	tb.Helper()
	clock := dstatetest.NewTestClock()
	e, err := dstate.NewSimpleEngine[dstatetest.Counter](dstatetest.CounterState{}, self, cfg, clock, dstatetest.Counter{})
	if err != nil {
		tb.Fatalf("NewSimpleEngine: %v", err)
	}
	return e, clock
}

func newGaugesEngine(tb testing.TB, cfg dstate.StateConfig) (*gaugesEngine, *dstatetest.TestClock) {
	tb.Helper()
	clock := dstatetest.NewTestClock()
	e, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, self, cfg, clock, dstatetest.NewGauges())
	if err != nil {
		tb.Fatalf("NewDeltaEngine: %v", err)
	}
	return e, clock
}

func counterSnapshot(src dstate.NodeID, g dstate.Generation, count int64) *dstate.WireMessage {
	data, _ := dstatetest.CounterState{}.EncodeState(dstatetest.Counter{Count: count})
	return &dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "counter", Source: src, Generation: g,
		WireVersion: 1, CreatedUnixMs: int64(g.Incarnation), ModifiedUnixMs: int64(g.Incarnation + g.Age), Data: data}
}

func gaugesSnapshot(src dstate.NodeID, g dstate.Generation, v dstatetest.GaugesView) *dstate.WireMessage {
	data, _ := dstatetest.GaugesState{}.EncodeView(v)
	return &dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "gauges", Source: src, Generation: g,
		WireVersion: 1, CreatedUnixMs: int64(g.Incarnation), ModifiedUnixMs: int64(g.Incarnation + g.Age), Data: data}
}

func gaugesDelta(src dstate.NodeID, g dstate.Generation, key string, value int64) *dstate.WireMessage {
	data, _ := dstatetest.GaugesState{}.EncodeDelta(dstatetest.GaugeDelta{Key: key, Value: value})
	return &dstate.WireMessage{Kind: dstate.KindDeltaUpdate, State: "gauges", Source: src, Generation: g,
		WireVersion: 1, CreatedUnixMs: int64(g.Incarnation), ModifiedUnixMs: int64(g.Incarnation + g.Age), Data: data}
}

func request(state string, src dstate.NodeID) *dstate.WireMessage {
	return &dstate.WireMessage{Kind: dstate.KindRequestSnapshot, State: state, Source: src}
}

func feed(from dstate.NodeID, notices ...dstate.ChangeNotification) *dstate.WireMessage {
	return &dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: from, Notifications: notices}
}

func notice(state string, src dstate.NodeID, g dstate.Generation) dstate.ChangeNotification {
	return dstate.ChangeNotification{State: state, Source: src, Generation: g}
}

func describe(acts []dstate.Action) []string {
	out := []string{}
	for _, a := range acts {
		out = append(out, a.String())
	}
	return out
}

func wantActions(tb testing.TB, got []dstate.Action, want ...string) {
	tb.Helper()
	if want == nil {
		want = []string{}
	}
	if g := describe(got); !slices.Equal(g, want) {
		tb.Errorf("actions:\n got %q\nwant %q", g, want)
	}
}

func wantMetrics(tb testing.TB, got, want dstate.SyncMetrics) {
	tb.Helper()
	if got != want {
		tb.Errorf("metrics:\n got %+v\nwant %+v", got, want)
	}
}

// view returns a node's view, failing the test when there is none.
func view[V any](tb testing.TB, views dstate.Views[V], id dstate.NodeID) *dstate.StateViewObject[V] {
	tb.Helper()
	v, ok := views.Get(id)
	if !ok {
		tb.Fatalf("no view of %s", id)
	}
	return v
}

func wantNoView[V any](tb testing.TB, views dstate.Views[V], id dstate.NodeID) {
	tb.Helper()
	if v, ok := views.Get(id); ok {
		tb.Errorf("view of %s at %s, want none", id, v.Generation)
	}
}

func peerStatus(tb testing.TB, statuses []dstate.PeerStatus, id dstate.NodeID) dstate.PeerStatus {
	tb.Helper()
	for _, s := range statuses {
		if s.Node == id {
			return s
		}
	}
	tb.Fatalf("no peer status of %s in %v", id, statuses)
	return dstate.PeerStatus{}
}

func incr(c *dstatetest.Counter) { c.Count++ }

func TestMutationUrgencyByPushMode(t *testing.T) {
	type outcome uint8
	const (
		broadcast outcome = iota
		after
		notify
		nothing
	)
	delay := 2 * time.Second
	urgencies := []dstate.SyncUrgency{dstate.Immediate, dstate.Default, dstate.Delayed(delay), dstate.Suppress}
	modes := []dstate.PushMode{dstate.ActivePush, dstate.ActiveFeedLazyPull, dstate.PushNone}
	want := map[dstate.UrgencyKind][3]outcome{ // indexed like modes
		dstate.UrgencyImmediate: {broadcast, broadcast, broadcast},
		dstate.UrgencyDefault:   {broadcast, notify, nothing},
		dstate.UrgencyDelayed:   {after, after, after},
		dstate.UrgencySuppress:  {nothing, nothing, nothing},
	}
	for _, engine := range []string{"simple", "delta"} {
		for _, u := range urgencies {
			for mi, mode := range modes {
				t.Run(fmt.Sprintf("%s/%s/%s", engine, u, mode), func(t *testing.T) {
					cfg := dstate.StateConfig{SyncStrategy: dstate.SyncStrategy{PushMode: mode}}
					var (
						acts    []dstate.Action
						metrics func() dstate.SyncMetrics
						msg     string
						state   string
					)
					if engine == "simple" {
						e, _ := newCounterEngine(t, cfg)
						res := e.Mutate(incr, u)
						acts, metrics, state = res.Actions, e.Metrics, "counter"
						msg = "FullSnapshot(counter from n1 v1000000:1 wire=1 2B)"
						if res.Generation != gen(ownInc, 1) || res.View.Count != 1 {
							t.Errorf("result: got %s %+v, want v1000000:1 count 1", res.Generation, res.View)
						}
					} else {
						e, _ := newGaugesEngine(t, cfg)
						res := e.MutateWithDelta(func(g *dstatetest.Gauges) dstatetest.GaugeChange {
							c := dstatetest.Set("cpu", 5)(g)
							c.Urgency = u
							return c
						})
						acts, metrics, state = res.Actions, e.Metrics, "gauges"
						msg = "DeltaUpdate(gauges from n1 v1000000:1 wire=1 6B)"
						if res.Generation != gen(ownInc, 1) || res.View["cpu"] != 5 || res.Delta.Key != "cpu" {
							t.Errorf("result: got %s %v %+v", res.Generation, res.View, res.Delta)
						}
					}
					m := dstate.SyncMetrics{TotalMutations: 1}
					if u.Kind == dstate.UrgencyImmediate {
						m.Immediate = 1
					}
					sent := func() {
						if engine == "simple" {
							m.SnapshotsSent = 1
						} else {
							m.DeltasSent = 1
						}
					}
					switch want[u.Kind][mi] {
					case broadcast:
						sent()
						wantActions(t, acts, "broadcast("+msg+")")
					case after:
						sent()
						m.Delayed = 1
						wantActions(t, acts, "after(2s, "+msg+")")
						if acts[0].Kind != dstate.ActionScheduleDelayed || acts[0].Delay != delay {
							t.Errorf("got %v delay %s, want ActionScheduleDelayed after %s", acts[0].Kind, acts[0].Delay, delay)
						}
					case notify:
						m.NoticesSent = 1
						wantActions(t, acts, "notify("+state+"@n1 v1000000:1)")
					case nothing:
						m.DeltasSuppressed = 1
						wantActions(t, acts)
					}
					wantMetrics(t, metrics(), m)
				})
			}
		}
	}
	t.Run("simple Mutate on a delta engine broadcasts a snapshot", func(t *testing.T) {
		e, _ := newGaugesEngine(t, dstate.DefaultStateConfig())
		res := e.Mutate(func(g *dstatetest.Gauges) { dstatetest.Set("cpu", 5)(g) }, dstate.Default)
		wantActions(t, res.Actions, "broadcast(FullSnapshot(gauges from n1 v1000000:1 wire=1 6B))")
	})
	t.Run("published views are immutable", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		before := view(t, e.Views(), self)
		e.Mutate(incr, dstate.Suppress)
		if before.Generation != gen(ownInc, 0) || before.Value.Count != 0 {
			t.Errorf("old view changed to %s %+v", before.Generation, before.Value)
		}
		if now := view(t, e.Views(), self); now.Generation != gen(ownInc, 1) || now.Value.Count != 1 {
			t.Errorf("new view %s %+v, want v1000000:1 count 1", now.Generation, now.Value)
		}
	})
}

// deltaReceiver returns a delta engine holding n2's view at peerInc:5.
func deltaReceiver(t *testing.T, cfg dstate.StateConfig) (*gaugesEngine, *dstatetest.TestClock) {
	t.Helper()
	e, clock := newGaugesEngine(t, cfg)
	wantActions(t, e.HandleWire(gaugesSnapshot("n2", gen(peerInc, 5), dstatetest.GaugesView{"a": 1})))
	return e, clock
}

func TestDeltaAcceptance(t *testing.T) {
	req := "send(n2, RequestSnapshot(gauges by n1))"
	t.Run("next age of the same incarnation is applied", func(t *testing.T) {
		e, _ := deltaReceiver(t, dstate.DefaultStateConfig())
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 6), "b", 2)))
		v := view(t, e.Views(), "n2")
		if v.Generation != gen(peerInc, 6) || v.Value.String() != "{a=1 b=2}" {
			t.Errorf("view: got %s %s, want v500000:6 {a=1 b=2}", v.Generation, v.Value)
		}
		if v.ModifiedUnixMs != int64(peerInc+6) {
			t.Errorf("modified time: got %d, want the sender's", v.ModifiedUnixMs)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, DeltasReceived: 1})
	})
	t.Run("older or equal delta is discarded", func(t *testing.T) {
		e, _ := deltaReceiver(t, dstate.DefaultStateConfig())
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 5), "a", 9)))
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 3), "a", 9)))
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc-1, 6), "a", 9)))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 5) || v.Value["a"] != 1 {
			t.Errorf("view changed to %s %s", v.Generation, v.Value)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, StaleDiscarded: 3})
	})
	t.Run("gap requests a snapshot", func(t *testing.T) {
		e, _ := deltaReceiver(t, dstate.DefaultStateConfig())
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 8), "b", 2)), req)
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 5) {
			t.Errorf("view moved to %s on a gap", v.Generation)
		}
		if s := peerStatus(t, e.PeerStatuses(), "n2"); s.Gaps != 1 {
			t.Errorf("Gaps: got %d, want 1", s.Gaps)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, AgeGaps: 1, SnapshotRequestsSent: 1})
	})
	t.Run("second gap within the pull timeout sends no request", func(t *testing.T) {
		cfg := dstate.DefaultStateConfig()
		cfg.PullTimeout = 3 * time.Second
		e, clock := deltaReceiver(t, cfg)
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 8), "b", 2)), req)
		clock.Advance(3*time.Second - time.Nanosecond)
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 9), "b", 3)))
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, AgeGaps: 2, SnapshotRequestsSent: 1})
		clock.Advance(time.Nanosecond)
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 10), "b", 4)), req)
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, AgeGaps: 3, SnapshotRequestsSent: 2})
	})
	t.Run("accepted snapshot re-arms requests", func(t *testing.T) {
		e, _ := deltaReceiver(t, dstate.DefaultStateConfig())
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 8), "b", 2)), req)
		wantActions(t, e.HandleWire(gaugesSnapshot("n2", gen(peerInc, 8), dstatetest.GaugesView{"b": 2})))
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 10), "b", 4)), req)
	})
	t.Run("delta of a new incarnation is a gap", func(t *testing.T) {
		e, _ := deltaReceiver(t, dstate.DefaultStateConfig())
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc+1, 1), "b", 2)), req)
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, AgeGaps: 1, SnapshotRequestsSent: 1})
	})
	t.Run("delta without a view requests a snapshot", func(t *testing.T) {
		e, _ := newGaugesEngine(t, dstate.DefaultStateConfig())
		wantActions(t, e.HandleWire(gaugesDelta("n2", gen(peerInc, 6), "b", 2)), req)
		wantNoView(t, e.Views(), "n2")
	})
	t.Run("simple engine answers a delta with a request", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 1))
		m := gaugesDelta("n2", gen(peerInc, 6), "b", 2)
		m.State = "counter"
		wantActions(t, e.HandleWire(m), "send(n2, RequestSnapshot(counter by n1))")
	})
	t.Run("malformed delta is counted and re-requested", func(t *testing.T) {
		e, _ := deltaReceiver(t, dstate.DefaultStateConfig())
		m := gaugesDelta("n2", gen(peerInc, 6), "b", 2)
		m.Data = []byte{7}
		wantActions(t, e.HandleWire(m), req)
		if s := peerStatus(t, e.PeerStatuses(), "n2"); !strings.Contains(s.LastError, "malformed") || s.ConsecutiveFailures != 1 {
			t.Errorf("peer status: %+v, want one malformed failure", s)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, SyncFailures: 1, SnapshotRequestsSent: 1})
	})
	t.Run("delta in an unknown version requests nothing", func(t *testing.T) {
		e, _ := deltaReceiver(t, dstate.DefaultStateConfig())
		m := gaugesDelta("n2", gen(peerInc, 6), "b", 2)
		m.WireVersion = 2
		wantActions(t, e.HandleWire(m))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 5) {
			t.Errorf("view moved to %s", v.Generation)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, SyncFailures: 1})
	})
}

func TestSnapshotAcceptance(t *testing.T) {
	setup := func(t *testing.T) (*counterEngine, *dstatetest.TestClock) {
		e, clock := newCounterEngine(t, dstate.DefaultStateConfig())
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5)))
		return e, clock
	}
	t.Run("newer is accepted", func(t *testing.T) {
		e, _ := setup(t)
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc, 6), 6)))
		// A newer incarnation: the peer restarted and gets the own
		// snapshot again (what its previous incarnation held is gone).
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc+1, 0), 100)),
			"send(n2, FullSnapshot(counter from n1 v1000000:0 wire=1 2B))")
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc+1, 0) || v.Value.Count != 100 || v.WireVersion != 1 {
			t.Errorf("view: got %s %+v wire %d", v.Generation, v.Value, v.WireVersion)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 3, SnapshotsSent: 1})
	})
	t.Run("older is discarded", func(t *testing.T) {
		e, _ := setup(t)
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 4), 4))
		e.HandleWire(counterSnapshot("n2", gen(peerInc-1, 9), 9))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 5) || v.Value.Count != 5 {
			t.Errorf("view: got %s %+v", v.Generation, v.Value)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, StaleDiscarded: 2})
	})
	t.Run("equal generation renews freshness", func(t *testing.T) {
		e, clock := setup(t)
		clock.Advance(3 * time.Second)
		m := counterSnapshot("n2", gen(peerInc, 5), 5)
		m.Data = []byte{0xff} // not decoded: the generation is what counts
		e.HandleWire(m)
		if v := view(t, e.Views(), "n2"); !e.Views().SyncedAt(v).Equal(clock.Now()) || v.Value.Count != 5 {
			t.Errorf("view: synced %s count %d, want synced now, count 5", e.Views().SyncedAt(v), v.Value.Count)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, SnapshotsConfirmed: 1})
	})
	t.Run("equal generation keeps a higher pending", func(t *testing.T) {
		e, _ := setup(t)
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 7))))
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		if v := view(t, e.Views(), "n2"); v.Pending != gen(peerInc, 7) {
			t.Errorf("pending: got %s, want v500000:7", v.Pending)
		}
	})
	t.Run("snapshot at or above the pending generation clears it", func(t *testing.T) {
		e, _ := setup(t)
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 7))))
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 7), 7))
		if v := view(t, e.Views(), "n2"); v.HasPending() {
			t.Errorf("pending %s not cleared", v.Pending)
		}
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 8))))
		e.HandleWire(counterSnapshot("n2", gen(peerInc+1, 0), 0))
		if v := view(t, e.Views(), "n2"); v.HasPending() {
			t.Errorf("pending %s not cleared by a newer incarnation", v.Pending)
		}
	})
	t.Run("snapshot below the pending generation keeps it", func(t *testing.T) {
		e, _ := setup(t)
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 7))))
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 6), 6))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 6) || v.Pending != gen(peerInc, 7) {
			t.Errorf("view %s pending %s, want v500000:6 pending v500000:7", v.Generation, v.Pending)
		}
	})
	t.Run("snapshot from a never-joined peer is accepted", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n9", gen(peerInc, 1), 1))
		if v := view(t, e.Views(), "n9"); v.Value.Count != 1 {
			t.Errorf("view: got %+v", v.Value)
		}
	})
	t.Run("timestamps come from the wire or the receiver's clock", func(t *testing.T) {
		e, clock := setup(t)
		v := view(t, e.Views(), "n2")
		if v.ModifiedUnixMs != int64(peerInc+5) || !e.Views().SyncedAt(v).Equal(clock.Now()) {
			t.Errorf("view times: %d %s", v.ModifiedUnixMs, e.Views().SyncedAt(v))
		}
		m := counterSnapshot("n3", gen(peerInc, 1), 1)
		m.CreatedUnixMs, m.ModifiedUnixMs = 0, 0
		e.HandleWire(m)
		if v := view(t, e.Views(), "n3"); v.ModifiedUnixMs != clock.UnixMilli() {
			t.Errorf("view time without wire times: %d, want %d", v.ModifiedUnixMs, clock.UnixMilli())
		}
	})
	t.Run("messages from self or of other states are ignored", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		other := counterSnapshot("n2", gen(peerInc, 1), 1)
		other.State = "other"
		for _, m := range []*dstate.WireMessage{counterSnapshot(self, gen(ownInc, 9), 9), other, request("other", "n2"),
			counterSnapshot("", gen(peerInc, 1), 1), {Kind: 9, State: "counter", Source: "n2"}} {
			wantActions(t, e.HandleWire(m))
		}
		if e.Views().Len() != 1 || view(t, e.Views(), self).Generation != gen(ownInc, 0) {
			t.Errorf("views changed: %v", e.Views().Nodes())
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{})
	})
}

func TestRequestSnapshotAnswered(t *testing.T) {
	e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
	e.Mutate(incr, dstate.Suppress)
	acts := e.HandleWire(request("counter", "n2"))
	wantActions(t, acts, "send(n2, FullSnapshot(counter from n1 v1000000:1 wire=1 2B))")
	got, err := dstatetest.CounterState{}.DecodeState(acts[0].Message.Data, acts[0].Message.WireVersion)
	if err != nil || got.Count != 1 {
		t.Errorf("snapshot data: got %+v, %v, want count 1", got, err)
	}
	wantMetrics(t, e.Metrics(), dstate.SyncMetrics{TotalMutations: 1, DeltasSuppressed: 1, SnapshotsSent: 1})
}

func TestChangeFeed(t *testing.T) {
	setup := func(t *testing.T) *counterEngine {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		return e
	}
	pending := func(t *testing.T, e *counterEngine) dstate.Generation {
		t.Helper()
		return view(t, e.Views(), "n2").Pending
	}
	t.Run("notice marks the view stale with a pending generation", func(t *testing.T) {
		e := setup(t)
		wantActions(t, e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 7)))))
		if got := pending(t, e); got != gen(peerInc, 7) {
			t.Errorf("pending: got %s, want v500000:7", got)
		}
		if got := e.Query(time.Hour).Stale; !slices.Equal(got, []dstate.NodeID{"n2"}) {
			t.Errorf("stale: got %v, want [n2]", got)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, NoticesReceived: 1})
	})
	t.Run("a lower notice never lowers a higher pending", func(t *testing.T) {
		e := setup(t)
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 7))))
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 6))))
		if got := pending(t, e); got != gen(peerInc, 7) {
			t.Errorf("pending: got %s, want v500000:7", got)
		}
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 8))))
		if got := pending(t, e); got != gen(peerInc, 8) {
			t.Errorf("pending: got %s, want v500000:8", got)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, NoticesReceived: 2})
	})
	t.Run("notice at or below the held generation is ignored", func(t *testing.T) {
		e := setup(t)
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 5)), notice("counter", "n2", gen(peerInc, 2))))
		if got := pending(t, e); !got.IsZero() {
			t.Errorf("pending: got %s, want none", got)
		}
	})
	t.Run("notice for an unknown peer is ignored", func(t *testing.T) {
		e := setup(t)
		e.HandleWire(feed("n9", notice("counter", "n9", gen(peerInc, 7))))
		wantNoView(t, e.Views(), "n9")
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1})
	})
	t.Run("feed from self is ignored", func(t *testing.T) {
		e := setup(t)
		e.HandleWire(feed(self, notice("counter", "n2", gen(peerInc, 7))))
		if got := pending(t, e); !got.IsZero() {
			t.Errorf("pending: got %s, want none", got)
		}
	})
	t.Run("notices about self or other states are ignored", func(t *testing.T) {
		e := setup(t)
		e.HandleWire(feed("n3", notice("counter", self, gen(ownInc, 9)), notice("other", "n2", gen(peerInc, 9))))
		if got := pending(t, e); !got.IsZero() {
			t.Errorf("pending: got %s, want none", got)
		}
		if v := view(t, e.Views(), self); v.HasPending() {
			t.Errorf("own view pending %s", v.Pending)
		}
	})
	t.Run("notice about a departed node is counted", func(t *testing.T) {
		e := setup(t)
		e.OnNodeLeft("n2")
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 7))))
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, DepartedIgnored: 1})
	})
}

func TestChangeFeedAggregator(t *testing.T) {
	a := dstate.NewChangeFeedAggregator(self)
	if _, ok := a.Flush(1); ok {
		t.Fatal("empty aggregator flushed a message")
	}
	a.Notify(notice("kv", "n2", gen(1, 5)))
	a.Notify(notice("kv", "n2", gen(1, 3)))
	a.Notify(notice("counter", "n3", gen(1, 1)))
	a.Notify(notice("counter", "n1", gen(2, 0)))
	a.Notify(notice("kv", "n2", gen(1, 6)))
	if a.Len() != 3 {
		t.Errorf("Len: got %d, want 3", a.Len())
	}
	m, ok := a.Flush(42)
	if !ok {
		t.Fatal("Flush reported nothing pending")
	}
	if got, want := m.String(), "BatchedChangeFeed(from n1: counter@n1 v2:0, counter@n3 v1:1, kv@n2 v1:6)"; got != want {
		t.Errorf("flushed %q, want %q", got, want)
	}
	if m.SentUnixMs != 42 || a.Len() != 0 {
		t.Errorf("sent %d, len after flush %d", m.SentUnixMs, a.Len())
	}
}

func TestQuery(t *testing.T) {
	const maxStale = 10 * time.Second
	setup := func(t *testing.T, s dstate.SyncStrategy) (*counterEngine, *dstatetest.TestClock) {
		e, clock := newCounterEngine(t, dstate.StateConfig{SyncStrategy: s})
		e.HandleWire(counterSnapshot("n3", gen(peerInc, 1), 1))
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 1), 1))
		return e, clock
	}
	t.Run("fresh up to maxStaleness, stale strictly after", func(t *testing.T) {
		e, clock := setup(t, dstate.ActivePushStrategy())
		clock.Advance(maxStale)
		if r := e.Query(maxStale); !r.Fresh() {
			t.Errorf("at exactly maxStaleness: stale %v, want fresh", r.Stale)
		}
		clock.Advance(time.Nanosecond)
		if r := e.Query(maxStale); !slices.Equal(r.Stale, []dstate.NodeID{"n2", "n3"}) || r.Fresh() {
			t.Errorf("after maxStaleness: stale %v, want [n2 n3]", r.Stale)
		}
		if r := e.Query(-1); !r.Fresh() {
			t.Errorf("negative maxStaleness: stale %v, want fresh", r.Stale)
		}
	})
	t.Run("pending makes stale", func(t *testing.T) {
		e, _ := setup(t, dstate.ActivePushStrategy())
		e.HandleWire(feed("n3", notice("counter", "n3", gen(peerInc, 2))))
		for _, d := range []time.Duration{time.Hour, -1} {
			if r := e.Query(d); !slices.Equal(r.Stale, []dstate.NodeID{"n3"}) {
				t.Errorf("Query(%s): stale %v, want [n3]", d, r.Stale)
			}
		}
	})
	t.Run("pull on query requests the stale peers", func(t *testing.T) {
		e, clock := setup(t, dstate.FeedLazyPullStrategy())
		clock.Advance(maxStale + 1)
		r := e.Query(maxStale)
		wantActions(t, r.Actions, "send(n2, RequestSnapshot(counter by n1))", "send(n3, RequestSnapshot(counter by n1))")
		wantActions(t, e.Query(maxStale).Actions) // outstanding within the pull timeout
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 2, SnapshotRequestsSent: 2})
	})
	t.Run("without pull on query no requests", func(t *testing.T) {
		e, clock := setup(t, dstate.ActivePushStrategy())
		clock.Advance(maxStale + 1)
		r := e.Query(maxStale)
		if len(r.Stale) != 2 {
			t.Errorf("stale: %v, want two peers", r.Stale)
		}
		wantActions(t, r.Actions)
	})
	t.Run("Pull requests any peer but self and departed ones", func(t *testing.T) {
		e, _ := setup(t, dstate.ActivePushStrategy())
		e.OnNodeLeft("n3")
		wantActions(t, e.Pull([]dstate.NodeID{self, "n2", "n3", "n4"}),
			"send(n2, RequestSnapshot(counter by n1))", "send(n4, RequestSnapshot(counter by n1))")
	})
}

func TestPeriodicSync(t *testing.T) {
	t.Run("periodic strategy broadcasts the own snapshot", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.StateConfig{SyncStrategy: dstate.PeriodicOnlyStrategy(30 * time.Second)})
		if e.PeriodicInterval() != 30*time.Second {
			t.Errorf("PeriodicInterval: got %s, want 30s", e.PeriodicInterval())
		}
		wantActions(t, e.PeriodicSync(), "broadcast(FullSnapshot(counter from n1 v1000000:0 wire=1 2B))")
		e.Mutate(incr, dstate.Default) // PushNone: nothing sent
		wantActions(t, e.PeriodicSync(), "broadcast(FullSnapshot(counter from n1 v1000000:1 wire=1 2B))")
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{TotalMutations: 1, DeltasSuppressed: 1, SnapshotsSent: 2})
	})
	t.Run("no periodic sync without an interval", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		if e.PeriodicInterval() != 0 {
			t.Errorf("PeriodicInterval: got %s, want 0", e.PeriodicInterval())
		}
		wantActions(t, e.PeriodicSync())
	})
}

func TestMembership(t *testing.T) {
	ownSnap := "send(n2, FullSnapshot(counter from n1 v1000000:0 wire=1 2B))"
	t.Run("join creates a stale placeholder and sends the own snapshot", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		wantActions(t, e.OnNodeJoined("n2"), ownSnap)
		v := view(t, e.Views(), "n2")
		if !v.Generation.IsZero() || !v.HasPending() {
			t.Errorf("placeholder: generation %s pending %s, want zero and pending", v.Generation, v.Pending)
		}
		if r := e.Query(time.Hour); !slices.Equal(r.Stale, []dstate.NodeID{"n2"}) {
			t.Errorf("stale: %v, want [n2]", r.Stale)
		}
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 0), 0))
		if r := e.Query(time.Hour); !r.Fresh() {
			t.Errorf("after the snapshot: stale %v", r.Stale)
		}
	})
	t.Run("joining self does nothing", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		wantActions(t, e.OnNodeJoined(self))
		wantActions(t, e.OnNodeJoined(""))
		if e.Views().Len() != 1 || view(t, e.Views(), self).HasPending() {
			t.Errorf("views after joining self: %v", e.Views().Nodes())
		}
	})
	t.Run("join keeps an existing view", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		wantActions(t, e.OnNodeJoined("n2"), ownSnap)
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 5) || v.HasPending() {
			t.Errorf("view: %s pending %s", v.Generation, v.Pending)
		}
	})
	t.Run("leave drops the view and ignores the departed node", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		e.OnNodeLeft("n2")
		wantNoView(t, e.Views(), "n2")
		if !e.IsDeparted("n2") {
			t.Error("n2 not departed")
		}
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc, 6), 6)))
		wantActions(t, e.HandleWire(request("counter", "n2")))
		m := gaugesDelta("n2", gen(peerInc, 6), "x", 1)
		m.State = "counter"
		wantActions(t, e.HandleWire(m))
		wantNoView(t, e.Views(), "n2")
		if len(e.PeerStatuses()) != 0 {
			t.Errorf("peer statuses: %v, want none", e.PeerStatuses())
		}
		e.OnNodeFailed("n2")
		if h := e.Health(time.Hour); h.FailingPeers != 0 || h.Status != dstate.Healthy {
			t.Errorf("health after a departed node failed: %+v", h)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, DepartedIgnored: 3})
	})
	t.Run("rejoin clears departed", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.OnNodeLeft("n2")
		wantActions(t, e.OnNodeJoined("n2"), ownSnap)
		if e.IsDeparted("n2") {
			t.Error("n2 still departed")
		}
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 6), 6))
		if v := view(t, e.Views(), "n2"); v.Value.Count != 6 {
			t.Errorf("view after rejoin: %+v", v.Value)
		}
	})
	t.Run("a reaped node is forgotten", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		e.OnNodeFailed("n2")
		e.OnNodeLeft("n2")
		e.ForgetDeparted("n2")
		e.ForgetDeparted(self)
		if e.IsDeparted("n2") || len(e.PeerStatuses()) != 0 || e.Views().Len() != 1 {
			t.Errorf("after reap: departed %v, peers %v, views %v", e.IsDeparted("n2"), e.PeerStatuses(), e.Views().Nodes())
		}
		e.HandleWire(counterSnapshot("n2", gen(peerInc+1, 0), 1))
		if v := view(t, e.Views(), "n2"); v.Value.Count != 1 {
			t.Errorf("a new incarnation after the reap: %+v", v.Value)
		}
	})
	t.Run("leaving self does nothing", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.OnNodeLeft(self)
		if e.IsDeparted(self) || e.Views().Len() != 1 {
			t.Error("self left")
		}
	})
	t.Run("failed node is failing until it syncs", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		e.OnNodeFailed("n2")
		e.OnNodeFailed(self)
		h := e.Health(time.Hour)
		if want := (dstate.EngineHealth{State: "counter", FailingPeers: 1, Status: dstate.Unhealthy}); h != want {
			t.Errorf("health: got %+v, want %+v", h, want)
		}
		if s := peerStatus(t, e.PeerStatuses(), "n2"); s.ConsecutiveFailures != 1 || s.LastError != "node failed" {
			t.Errorf("peer status: %+v", s)
		}
		view(t, e.Views(), "n2") // kept
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		if h := e.Health(time.Hour); h.Status != dstate.Healthy || h.HealthyPeers != 1 {
			t.Errorf("health after sync: %+v", h)
		}
	})
}

func TestVersionMismatch(t *testing.T) {
	v2 := func(g dstate.Generation) *dstate.WireMessage {
		m := counterSnapshot("n2", g, int64(g.Age))
		m.WireVersion = 2
		return m
	}
	setup := func(t *testing.T, p dstate.VersionMismatchPolicy) *counterEngine {
		e, _ := newCounterEngine(t, dstate.StateConfig{VersionMismatchPolicy: p})
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		return e
	}
	t.Run("KeepStale keeps the last good view", func(t *testing.T) {
		e := setup(t, dstate.KeepStale)
		wantActions(t, e.HandleWire(v2(gen(peerInc, 6))))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 5) || v.WireVersion != 1 {
			t.Errorf("view: %s wire %d", v.Generation, v.WireVersion)
		}
		s := peerStatus(t, e.PeerStatuses(), "n2")
		if s.ConsecutiveFailures != 1 || !strings.Contains(s.LastError, "version mismatch") {
			t.Errorf("peer status: %+v", s)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, SyncFailures: 1})
	})
	t.Run("DropAndWait removes the view until a readable one comes", func(t *testing.T) {
		e := setup(t, dstate.DropAndWait)
		wantActions(t, e.HandleWire(v2(gen(peerInc, 6))))
		wantNoView(t, e.Views(), "n2")
		if e.IsDeparted("n2") {
			t.Error("n2 departed after a mismatch")
		}
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 7), 7))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 7) || v.Value.Count != 7 {
			t.Errorf("view: %s %+v", v.Generation, v.Value)
		}
		if s := peerStatus(t, e.PeerStatuses(), "n2"); s.ConsecutiveFailures != 0 || s.LastError != "" {
			t.Errorf("peer status after recovery: %+v", s)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 2, SyncFailures: 1})
	})
	t.Run("DropAndWait keeps the peer's sync record while the view is gone", func(t *testing.T) {
		e := setup(t, dstate.DropAndWait)
		e.HandleWire(v2(gen(peerInc, 6)))
		e.HandleWire(v2(gen(peerInc, 7)))
		wantNoView(t, e.Views(), "n2")
		delta := func(g dstate.Generation) *dstate.WireMessage {
			m := gaugesDelta("n2", g, "x", 1)
			m.State = "counter"
			return m
		}
		// A delta without a view asks for a snapshot, once per pull timeout.
		wantActions(t, e.HandleWire(delta(gen(peerInc, 9))), "send(n2, RequestSnapshot(counter by n1))")
		wantActions(t, e.HandleWire(delta(gen(peerInc, 10))))
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 11), 11))
		s := peerStatus(t, e.PeerStatuses(), "n2")
		if s.ConsecutiveFailures != 0 || s.LastSync.IsZero() || s.LastAttempt.IsZero() || s.Generation != gen(peerInc, 11) {
			t.Errorf("peer status after recovery: %+v", s)
		}
	})
	t.Run("a failure before any view is kept when the view appears", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.OnNodeFailed("n3")
		e.OnNodeJoined("n3")
		if h := e.Health(time.Hour); h.FailingPeers != 1 {
			t.Errorf("health: %+v, want n3 failing", h)
		}
		if s := peerStatus(t, e.PeerStatuses(), "n3"); s.ConsecutiveFailures != 1 || s.LastError != "node failed" {
			t.Errorf("peer status: %+v", s)
		}
	})
	t.Run("a decoder that reads the version accepts it", func(t *testing.T) {
		clock := dstatetest.NewTestClock()
		e, err := dstate.NewSimpleEngine[dstatetest.Counter](dstatetest.CounterState{AlsoReads: 2}, self, dstate.StateConfig{}, clock, dstatetest.Counter{})
		if err != nil {
			t.Fatal(err)
		}
		e.HandleWire(v2(gen(peerInc, 6)))
		if v := view(t, e.Views(), "n2"); v.WireVersion != 2 || v.Value.Count != 6 {
			t.Errorf("view: wire %d %+v", v.WireVersion, v.Value)
		}
	})
	t.Run("malformed payload is counted", func(t *testing.T) {
		e := setup(t, dstate.DropAndWait)
		m := counterSnapshot("n2", gen(peerInc, 6), 6)
		m.Data = []byte{0x02, 0x09}
		wantActions(t, e.HandleWire(m))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 5) {
			t.Errorf("view: %s", v.Generation)
		}
		if s := peerStatus(t, e.PeerStatuses(), "n2"); !strings.Contains(s.LastError, "malformed") {
			t.Errorf("peer status: %+v", s)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, SyncFailures: 1})
	})
}

func TestTwoPhaseMutation(t *testing.T) {
	t.Run("Commit publishes what Prepare changed", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		obj := e.Prepare(incr, dstate.Default)
		if obj.Generation != gen(ownInc, 1) || obj.Value.Count != 1 || obj.StorageVersion != 1 {
			t.Errorf("prepared object: %+v", obj)
		}
		if v := view(t, e.Views(), self); v.Generation != gen(ownInc, 0) || v.Value.Count != 0 {
			t.Errorf("view before Commit: %s %+v", v.Generation, v.Value)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{})
		res := e.Commit()
		wantActions(t, res.Actions, "broadcast(FullSnapshot(counter from n1 v1000000:1 wire=1 2B))")
		if v := view(t, e.Views(), self); v.Generation != gen(ownInc, 1) || v.Value.Count != 1 {
			t.Errorf("view after Commit: %s %+v", v.Generation, v.Value)
		}
	})
	t.Run("Abort restores value and generation and publishes nothing", func(t *testing.T) {
		e, clock := newCounterEngine(t, dstate.DefaultStateConfig())
		clock.Advance(time.Second)
		e.Prepare(func(c *dstatetest.Counter) { c.Count = 99 }, dstate.Immediate)
		e.Abort(dstatetest.Counter{})
		if e.Generation() != gen(ownInc, 0) || e.State().Value.Count != 0 || e.State().ModifiedUnixMs != int64(ownInc) {
			t.Errorf("after Abort: %+v", *e.State())
		}
		wantActions(t, e.Commit().Actions) // nothing prepared
		if v := view(t, e.Views(), self); v.Generation != gen(ownInc, 0) {
			t.Errorf("view: %s", v.Generation)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{})
		if res := e.Mutate(incr, dstate.Suppress); res.Generation != gen(ownInc, 1) {
			t.Errorf("next mutation: %s, want v1000000:1", res.Generation)
		}
		e.Abort(dstatetest.Counter{Count: 50}) // nothing prepared: no effect
		if e.State().Value.Count != 1 {
			t.Errorf("Abort without Prepare changed the value to %d", e.State().Value.Count)
		}
	})
	t.Run("snapshot sent while prepared carries the published view", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		decode := func(m dstate.WireMessage) int64 {
			c, err := dstatetest.CounterState{}.DecodeState(m.Data, m.WireVersion)
			if err != nil {
				t.Fatal(err)
			}
			return c.Count
		}
		e.Prepare(func(c *dstatetest.Counter) { c.Count = 99 }, dstate.Default)
		acts := e.HandleWire(request("counter", "n2"))
		if m := acts[0].Message; m.Generation != gen(ownInc, 0) || decode(m) != 0 {
			t.Errorf("snapshot while prepared: %s count %d, want the published v1000000:0 count 0", m.Generation, decode(m))
		}
		e.Abort(dstatetest.Counter{})
		e.Prepare(func(c *dstatetest.Counter) { c.Count = 5 }, dstate.Default)
		res := e.Commit()
		if m := res.Actions[0].Message; m.Generation != gen(ownInc, 1) || decode(m) != 5 {
			t.Errorf("broadcast after Abort and Commit: %s count %d, want v1000000:1 count 5", m.Generation, decode(m))
		}
	})
	t.Run("PrepareDelta exposes the encoded delta until Commit", func(t *testing.T) {
		e, _ := newGaugesEngine(t, dstate.DefaultStateConfig())
		obj, d := e.PrepareDelta(dstatetest.Set("cpu", 5))
		want, _ := dstatetest.GaugesState{}.EncodeDelta(d)
		if obj.Generation != gen(ownInc, 1) || string(e.PreparedDelta()) != string(want) {
			t.Errorf("prepared: %s delta %x, want %x", obj.Generation, e.PreparedDelta(), want)
		}
		if v := view(t, e.Views(), self); len(v.Value) != 0 {
			t.Errorf("view before Commit: %s", v.Value)
		}
		e.Commit()
		if e.PreparedDelta() != nil {
			t.Error("PreparedDelta after Commit is not nil")
		}
		e.PrepareDelta(dstatetest.Set("cpu", 6))
		e.Abort(dstatetest.Gauges{Values: map[string]int64{"cpu": 5}, Total: 5})
		if e.PreparedDelta() != nil || e.Generation() != gen(ownInc, 1) || view(t, e.Views(), self).Value["cpu"] != 5 {
			t.Errorf("after Abort: delta %x generation %s", e.PreparedDelta(), e.Generation())
		}
	})
}

func TestRestoreAndReincarnate(t *testing.T) {
	t.Run("Restore keeps the persisted generation", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.SnapshotMessage() // caches the encoding of the initial view
		e.Restore(dstate.StateObject[dstatetest.Counter]{Generation: gen(42, 7), StorageVersion: 9, Value: dstatetest.Counter{Count: 3},
			CreatedUnixMs: 40, ModifiedUnixMs: 41}, 1)
		if e.Generation() != gen(42, 7) || e.State().StorageVersion != 1 || e.State().Value.Count != 3 {
			t.Errorf("restored: %+v", *e.State())
		}
		if v := view(t, e.Views(), self); v.Generation != gen(42, 7) || v.Value.Count != 3 || v.ModifiedUnixMs != 41 {
			t.Errorf("own view: %+v", *v)
		}
		m, ok := e.SnapshotMessage()
		c, _ := dstatetest.CounterState{}.DecodeState(m.Data, 1)
		if !ok || m.Generation != gen(42, 7) || c.Count != 3 || m.CreatedUnixMs != 40 || m.ModifiedUnixMs != 41 {
			t.Errorf("snapshot after Restore: %s count %d", m.String(), c.Count)
		}
		if res := e.Mutate(incr, dstate.Suppress); res.Generation != gen(42, 8) || res.View.Count != 4 {
			t.Errorf("mutation after Restore: %s %+v", res.Generation, res.View)
		}
	})
	t.Run("Reincarnate takes at least atLeast", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.Mutate(incr, dstate.Suppress)
		e.Reincarnate(dstatetest.Counter{Count: 9}, 5_000_000)
		if e.Generation() != gen(5_000_000, 0) || e.State().Value.Count != 9 {
			t.Errorf("reincarnated: %+v", *e.State())
		}
		if v := view(t, e.Views(), self); v.Generation != gen(5_000_000, 0) || v.Value.Count != 9 {
			t.Errorf("own view: %s %+v", v.Generation, v.Value)
		}
	})
	t.Run("Reincarnate takes the clock when it is larger", func(t *testing.T) {
		e, clock := newCounterEngine(t, dstate.DefaultStateConfig())
		clock.Advance(time.Second)
		e.Reincarnate(dstatetest.Counter{}, 10)
		if want := gen(ownInc+1000, 0); e.Generation() != want || e.State().CreatedUnixMs != int64(ownInc+1000) {
			t.Errorf("reincarnated at %s, want %s", e.Generation(), want)
		}
	})
	t.Run("new engine starts at the clock", func(t *testing.T) {
		clock := dstatetest.NewTestClockAt(-5)
		e, err := dstate.NewSimpleEngine[dstatetest.Counter](dstatetest.CounterState{}, self, dstate.StateConfig{}, clock, dstatetest.Counter{})
		if err != nil {
			t.Fatal(err)
		}
		if e.Generation() != gen(1, 0) {
			t.Errorf("generation with a clock before 1970: %s, want v1:0", e.Generation())
		}
	})
}

func TestHealth(t *testing.T) {
	cases := []struct {
		name                  string
		peers, stale, failing int // the first `stale` peers are stale; failing counts from the last peer backwards
		want                  dstate.EngineHealth
	}{
		{"no peers", 0, 0, 0, dstate.EngineHealth{Status: dstate.Healthy}},
		{"all fresh", 3, 0, 0, dstate.EngineHealth{HealthyPeers: 3, Status: dstate.Healthy}},
		{"one of one stale", 1, 1, 0, dstate.EngineHealth{StalePeers: 1, Status: dstate.Unhealthy}},
		{"one of two stale is exactly half", 2, 1, 0, dstate.EngineHealth{HealthyPeers: 1, StalePeers: 1, Status: dstate.Unhealthy}},
		{"one of three stale", 3, 1, 0, dstate.EngineHealth{HealthyPeers: 2, StalePeers: 1, Status: dstate.Degraded}},
		{"two of three stale", 3, 2, 0, dstate.EngineHealth{HealthyPeers: 1, StalePeers: 2, Status: dstate.Unhealthy}},
		{"one of four failing", 4, 0, 1, dstate.EngineHealth{HealthyPeers: 3, FailingPeers: 1, Status: dstate.Degraded}},
		{"two of four unhealthy is exactly half", 4, 1, 1, dstate.EngineHealth{HealthyPeers: 2, StalePeers: 1, FailingPeers: 1, Status: dstate.Unhealthy}},
		{"stale and failing peer counts once", 5, 1, 5, dstate.EngineHealth{HealthyPeers: 0, StalePeers: 1, FailingPeers: 5, Status: dstate.Unhealthy}},
		{"one of five both stale and failing", 5, 1, 0, dstate.EngineHealth{HealthyPeers: 4, StalePeers: 1, Status: dstate.Degraded}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
			for i := range tc.peers {
				id := dstate.NodeID(fmt.Sprintf("p%d", i))
				e.HandleWire(counterSnapshot(id, gen(peerInc, 1), 1))
				if i < tc.stale {
					e.HandleWire(feed(id, notice("counter", id, gen(peerInc, 2))))
				}
				if i >= tc.peers-tc.failing {
					e.OnNodeFailed(id)
				}
			}
			tc.want.State = "counter"
			if got := e.Health(time.Hour); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	t.Run("stale by age", func(t *testing.T) {
		e, clock := newCounterEngine(t, dstate.DefaultStateConfig())
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 1), 1))
		clock.Advance(time.Minute)
		e.HandleWire(counterSnapshot("n3", gen(peerInc, 1), 1))
		e.HandleWire(counterSnapshot("n4", gen(peerInc, 1), 1))
		if h := e.Health(time.Minute - 1); h.StalePeers != 1 || h.Status != dstate.Degraded {
			t.Errorf("got %+v, want one stale peer, degraded", h)
		}
	})
}

func TestPeerStatuses(t *testing.T) {
	e, clock := newCounterEngine(t, dstate.DefaultStateConfig())
	now := clock.UnixMilli()
	m := counterSnapshot("n3", gen(peerInc, 1), 1)
	m.SentUnixMs = now - 250
	e.HandleWire(m)
	future := counterSnapshot("n2", gen(peerInc, 1), 1)
	future.SentUnixMs = now + 1000
	e.HandleWire(future)
	e.HandleWire(counterSnapshot("n4", gen(peerInc, 1), 1)) // no send time
	clock.Advance(time.Second)
	d := gaugesDelta("n3", gen(peerInc, 2), "x", 1)
	d.State, d.SentUnixMs = "counter", now+1000-40 // measured by the simple engine's request path: not applied
	e.HandleWire(d)
	statuses := e.PeerStatuses()
	var ids []dstate.NodeID
	for _, s := range statuses {
		ids = append(ids, s.Node)
	}
	if !slices.Equal(ids, []dstate.NodeID{"n2", "n3", "n4"}) {
		t.Fatalf("nodes: got %v, want [n2 n3 n4] (sorted, without self)", ids)
	}
	n3 := peerStatus(t, statuses, "n3")
	if n3.LastLatency != 250*time.Millisecond || n3.Generation != gen(peerInc, 1) {
		t.Errorf("n3: latency %s generation %s, want 250ms v500000:1", n3.LastLatency, n3.Generation)
	}
	if !n3.LastSync.Equal(clock.Now().Add(-time.Second)) || !n3.LastAttempt.Equal(clock.Now()) {
		t.Errorf("n3: last sync %s, last attempt %s", n3.LastSync, n3.LastAttempt)
	}
	if s := peerStatus(t, statuses, "n2"); s.LastLatency != 0 {
		t.Errorf("n2: latency %s from a future send time, want 0", s.LastLatency)
	}
	if s := peerStatus(t, statuses, "n4"); s.LastLatency != 0 || s.LastSync.IsZero() {
		t.Errorf("n4: %+v", s)
	}

	g, gclock := deltaReceiver(t, dstate.DefaultStateConfig())
	dm := gaugesDelta("n2", gen(peerInc, 6), "b", 2)
	dm.SentUnixMs = gclock.UnixMilli() - 40
	g.HandleWire(dm)
	if s := peerStatus(t, g.PeerStatuses(), "n2"); s.LastLatency != 40*time.Millisecond {
		t.Errorf("delta latency: got %s, want 40ms", s.LastLatency)
	}
}

func TestEngineConfigValidate(t *testing.T) {
	clock := dstatetest.NewTestClock()
	valid := func() dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter] {
		return dstate.SimpleEngineConfig[dstatetest.Counter](dstatetest.CounterState{}, self, dstate.DefaultStateConfig(), clock)
	}
	cases := []struct {
		name  string
		edit  func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter])
		field string // "" means valid
	}{
		{"valid", func(*dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) {}, ""},
		{"no ApplyDelta is valid", func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) { c.Codec.ApplyDelta = nil }, ""},
		{"zero StateConfig is valid", func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) { c.State = dstate.StateConfig{} }, ""},
		{"Name", func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) { c.Name = "" }, "EngineConfig.Name"},
		{"Node", func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) { c.Node = "" }, "EngineConfig.Node"},
		{"Clock", func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) { c.Clock = nil }, "EngineConfig.Clock"},
		{"Project", func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) { c.Codec.Project = nil }, "EngineConfig.Codec.Project"},
		{"EncodeView", func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) { c.Codec.EncodeView = nil }, "EngineConfig.Codec.EncodeView"},
		{"DecodeView", func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) { c.Codec.DecodeView = nil }, "EngineConfig.Codec.DecodeView"},
		{"State", func(c *dstate.EngineConfig[dstatetest.Counter, dstatetest.Counter]) { c.State.PullTimeout = -1 }, "PullTimeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			before := fmt.Sprintf("%s %s %+v %d %d", c.Name, c.Node, c.State, c.WireVersion, c.StorageVersion)
			err := c.Validate()
			if after := fmt.Sprintf("%s %s %+v %d %d", c.Name, c.Node, c.State, c.WireVersion, c.StorageVersion); after != before {
				t.Errorf("Validate changed the config from %s to %s", before, after)
			}
			e, nerr := dstate.NewEngine(c, dstatetest.Counter{})
			if tc.field == "" {
				if err != nil || nerr != nil || e == nil {
					t.Errorf("Validate: %v, NewEngine: %v, want valid", err, nerr)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.HasPrefix(err.Error(), "dstate: ") {
				t.Errorf("Validate: got %v, want an error naming %s", err, tc.field)
			}
			if e != nil || nerr == nil || nerr.Error() != err.Error() {
				t.Errorf("NewEngine: got %v, %v, want nil and the Validate error", e, nerr)
			}
		})
	}
	t.Run("constructors reject an invalid StateConfig", func(t *testing.T) {
		bad := dstate.StateConfig{PullTimeout: -1}
		if _, err := dstate.NewSimpleEngine[dstatetest.Counter](dstatetest.CounterState{}, self, bad, clock, dstatetest.Counter{}); err == nil {
			t.Error("NewSimpleEngine accepted an invalid config")
		}
		if _, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, self, bad, clock, dstatetest.NewGauges()); err == nil {
			t.Error("NewDeltaEngine accepted an invalid config")
		}
		if _, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, "", dstate.StateConfig{}, clock, dstatetest.NewGauges()); err == nil {
			t.Error("NewDeltaEngine accepted an empty node")
		}
	})
}

func TestStateConfigValidate(t *testing.T) {
	cases := []struct {
		name  string
		cfg   dstate.StateConfig
		field string
	}{
		{"zero value", dstate.StateConfig{}, ""},
		{"default", dstate.DefaultStateConfig(), ""},
		{"feed lazy pull", dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy()}, ""},
		{"feed with periodic sync", dstate.StateConfig{SyncStrategy: dstate.FeedWithPeriodicSyncStrategy(time.Minute)}, ""},
		{"periodic only", dstate.StateConfig{SyncStrategy: dstate.PeriodicOnlyStrategy(time.Minute), VersionMismatchPolicy: dstate.DropAndWait}, ""},
		{"push mode", dstate.StateConfig{SyncStrategy: dstate.SyncStrategy{PushMode: 3}}, "SyncStrategy.PushMode"},
		{"periodic full sync", dstate.StateConfig{SyncStrategy: dstate.SyncStrategy{PeriodicFullSync: -time.Second}}, "SyncStrategy.PeriodicFullSync"},
		{"batch interval", dstate.StateConfig{SyncStrategy: dstate.SyncStrategy{ChangeFeed: dstate.ChangeFeedConfig{BatchInterval: -1}}}, "SyncStrategy.ChangeFeed.BatchInterval"},
		{"pull timeout", dstate.StateConfig{PullTimeout: -time.Second}, "PullTimeout"},
		{"mismatch policy", dstate.StateConfig{VersionMismatchPolicy: 2}, "VersionMismatchPolicy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.cfg
			err := tc.cfg.Validate()
			if tc.cfg != before {
				t.Errorf("Validate changed the config")
			}
			switch {
			case tc.field == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tc.field != "" && (err == nil || !strings.Contains(err.Error(), tc.field) || !strings.HasPrefix(err.Error(), "dstate: ")):
				t.Errorf("got %v, want an error naming %s", err, tc.field)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		var c dstate.StateConfig
		if c.EffectivePullTimeout() != dstate.DefaultPullTimeout || c.SyncStrategy.BatchInterval() != dstate.DefaultBatchInterval {
			t.Errorf("zero config: pull %s batch %s", c.EffectivePullTimeout(), c.SyncStrategy.BatchInterval())
		}
		c.PullTimeout, c.SyncStrategy.ChangeFeed.BatchInterval = time.Second, time.Millisecond
		if c.EffectivePullTimeout() != time.Second || c.SyncStrategy.BatchInterval() != time.Millisecond {
			t.Errorf("set config: pull %s batch %s", c.EffectivePullTimeout(), c.SyncStrategy.BatchInterval())
		}
		if d := dstate.DefaultStateConfig(); d.SyncStrategy.PushMode != dstate.ActivePush || d.PullTimeout != 5*time.Second || d.VersionMismatchPolicy != dstate.KeepStale {
			t.Errorf("DefaultStateConfig: %+v", d)
		}
	})
}

func TestStrategyPresets(t *testing.T) {
	feed := dstate.ChangeFeedConfig{BatchInterval: dstate.DefaultBatchInterval}
	cases := []struct {
		name string
		got  dstate.SyncStrategy
		want dstate.SyncStrategy
	}{
		{"ActivePush", dstate.ActivePushStrategy(), dstate.SyncStrategy{PushMode: dstate.ActivePush, PullOnQuery: false, ChangeFeed: feed}},
		{"FeedLazyPull", dstate.FeedLazyPullStrategy(), dstate.SyncStrategy{PushMode: dstate.ActiveFeedLazyPull, PullOnQuery: true, ChangeFeed: feed}},
		{"FeedWithPeriodicSync", dstate.FeedWithPeriodicSyncStrategy(time.Minute), dstate.SyncStrategy{PushMode: dstate.ActiveFeedLazyPull, PullOnQuery: true, PeriodicFullSync: time.Minute, ChangeFeed: feed}},
		{"PeriodicOnly", dstate.PeriodicOnlyStrategy(time.Minute), dstate.SyncStrategy{PushMode: dstate.PushNone, PullOnQuery: false, PeriodicFullSync: time.Minute, ChangeFeed: feed}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %+v, want %+v", tc.got, tc.want)
			}
		})
	}
}

func TestGeneration(t *testing.T) {
	cases := []struct {
		a, b dstate.Generation
		want int
	}{
		{gen(1, 1), gen(1, 1), 0},
		{gen(0, 0), gen(0, 0), 0},
		{gen(1, 1), gen(1, 2), -1},
		{gen(1, 3), gen(1, 2), 1},
		{gen(1, 1<<63), gen(2, 0), -1},
		{gen(3, 0), gen(2, 1<<63), 1},
		{gen(0, 1), gen(1, 0), -1},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s vs %s", tc.a, tc.b), func(t *testing.T) {
			if got := tc.a.Compare(tc.b); got != tc.want {
				t.Errorf("Compare: got %d, want %d", got, tc.want)
			}
			if got := tc.b.Compare(tc.a); got != -tc.want {
				t.Errorf("reverse Compare: got %d, want %d", got, -tc.want)
			}
			if got := tc.a.Less(tc.b); got != (tc.want < 0) {
				t.Errorf("Less: got %v", got)
			}
		})
	}
	for _, tc := range []struct {
		g    dstate.Generation
		want string
	}{{gen(0, 0), "v0:0"}, {gen(1_700_000_000_000, 3), "v1700000000000:3"}, {gen(1<<64-1, 1<<64-1), "v18446744073709551615:18446744073709551615"}} {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.g.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if got := tc.g.IsZero(); got != (tc.want == "v0:0") {
				t.Errorf("IsZero: got %v", got)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	cases := []struct {
		got  fmt.Stringer
		want string
	}{
		{dstate.Default, "default"},
		{dstate.SyncUrgency{}, "default"},
		{dstate.Immediate, "immediate"},
		{dstate.Delayed(1500 * time.Millisecond), "delayed(1.5s)"},
		{dstate.Suppress, "suppress"},
		{dstate.PushNone, "none"},
		{dstate.ActivePush, "active-push"},
		{dstate.ActiveFeedLazyPull, "feed-lazy-pull"},
		{dstate.Healthy, "healthy"},
		{dstate.Degraded, "degraded"},
		{dstate.Unhealthy, "unhealthy"},
		{dstate.KeepStale, "keep-stale"},
		{dstate.DropAndWait, "drop-and-wait"},
		{dstate.KindFullSnapshot, "FullSnapshot"},
		{dstate.KindDeltaUpdate, "DeltaUpdate"},
		{dstate.KindRequestSnapshot, "RequestSnapshot"},
		{dstate.KindBatchedChangeFeed, "BatchedChangeFeed"},
		{dstate.MessageKind(0), "MessageKind(0)"},
		{dstate.Action{Kind: 9}, "action(9)"},
		{dstate.NodeID("n1"), "n1"},
		{notice("kv", "n2", gen(3, 4)), "kv@n2 v3:4"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.got.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEngineAccessors(t *testing.T) {
	e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
	if e.Name() != "counter" || e.Node() != self || e.WireVersion() != 1 || e.Config() != dstate.DefaultStateConfig() {
		t.Errorf("accessors: %s %s %d %+v", e.Name(), e.Node(), e.WireVersion(), e.Config())
	}
	g, _ := newGaugesEngine(t, dstate.DefaultStateConfig())
	if g.Definition().Name() != "gauges" {
		t.Errorf("Definition: %s", g.Definition().Name())
	}
	if _, err := (dstatetest.CounterState{}).DecodeState(nil, 1); !errors.Is(err, dstate.ErrMalformed) {
		t.Errorf("CounterState decode of nothing: %v", err)
	}
}
