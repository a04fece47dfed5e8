package dstate_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// peekingGauges is GaugesState whose ApplyDelta records the generation of
// n2's published view at each call, so that a test sees what a reader
// would have seen in the middle of a run.
type peekingGauges struct {
	dstatetest.GaugesState
	eng  **gaugesEngine
	seen *[]dstate.Generation
}

func (s peekingGauges) ApplyDelta(v dstatetest.GaugesView, d dstatetest.GaugeDelta) (dstatetest.GaugesView, error) {
	if o, ok := (*s.eng).Views().Get("n2"); ok {
		*s.seen = append(*s.seen, o.Generation)
	}
	return s.GaugesState.ApplyDelta(v, d)
}

func deltaRun(msgs ...*dstate.WireMessage) []dstate.WireMessage {
	out := make([]dstate.WireMessage, len(msgs))
	for i, m := range msgs {
		out[i] = *m
	}
	return out
}

// TestDeltaRunPublishesOnce checks that a run of deltas from one peer
// publishes the peer's view once, at its end: a reader in the middle of
// the run sees the view from before it, and a view a reader held before
// the run is not changed by it.
func TestDeltaRunPublishesOnce(t *testing.T) {
	var e *gaugesEngine
	var seen []dstate.Generation
	clock := dstatetest.NewTestClock()
	e, err := dstate.NewDeltaEngine[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange](
		peekingGauges{eng: &e, seen: &seen}, self, dstate.DefaultStateConfig(), clock, dstatetest.NewGauges())
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, e.HandleWire(gaugesSnapshot("n2", gen(peerInc, 5), dstatetest.GaugesView{"a": 1})))
	before := view(t, e.Views(), "n2")
	wantActions(t, e.HandleDeltaRun(deltaRun(
		gaugesDelta("n2", gen(peerInc, 6), "b", 2),
		gaugesDelta("n2", gen(peerInc, 7), "c", 3),
		gaugesDelta("n2", gen(peerInc, 8), "b", 4),
	)))
	if want := []dstate.Generation{gen(peerInc, 5), gen(peerInc, 5), gen(peerInc, 5)}; !slices.Equal(seen, want) {
		t.Errorf("n2's view during the run: got %v, want %v (published once, after the run)", seen, want)
	}
	v := view(t, e.Views(), "n2")
	if v.Generation != gen(peerInc, 8) || v.Value.String() != "{a=1 b=4 c=3}" || v.ModifiedUnixMs != int64(peerInc+8) {
		t.Errorf("after the run: got %s %s modified %d, want v500000:8 {a=1 b=4 c=3} modified %d", v.Generation, v.Value, v.ModifiedUnixMs, peerInc+8)
	}
	if before.Generation != gen(peerInc, 5) || before.Value.String() != "{a=1}" {
		t.Errorf("the view held from before the run changed to %s %s", before.Generation, before.Value)
	}
	wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, DeltasReceived: 3})

	// The next run starts from the published view, and a view held
	// between runs stays as it was.
	held := v
	seen = nil
	wantActions(t, e.HandleDeltaRun(deltaRun(gaugesDelta("n2", gen(peerInc, 9), "a", 5), gaugesDelta("n2", gen(peerInc, 10), "d", 6))))
	if held.Generation != gen(peerInc, 8) || held.Value.String() != "{a=1 b=4 c=3}" {
		t.Errorf("a view held across runs changed to %s %s", held.Generation, held.Value)
	}
	if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 10) || v.Value.String() != "{a=5 b=4 c=3 d=6}" {
		t.Errorf("after the second run: got %s %s", v.Generation, v.Value)
	}
}

// TestDeltaRunIsHandleWireInTurn checks that HandleDeltaRun ends where
// HandleWire, called on each message in turn, ends: the same actions, the
// same views (generation, value, pending generation, times), the same
// metrics and peer statuses, over random runs of in-sequence, stale,
// skipping, malformed and unknown-version deltas from two peers, with
// snapshots, requests and notices mixed in.
func TestDeltaRunIsHandleWireInTurn(t *testing.T) {
	for seed := range uint64(300) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			run, turn := newRunPair(t)
			age := map[dstate.NodeID]uint64{"n2": 5, "n3": 5}
			for range 1 + rng.IntN(4) {
				var msgs []*dstate.WireMessage
				for range 1 + rng.IntN(12) {
					src := dstate.NodeID("n2")
					if rng.IntN(4) == 0 {
						src = "n3"
					}
					var m *dstate.WireMessage
					switch r := rng.IntN(20); {
					case r < 13: // the next delta
						age[src]++
						m = gaugesDelta(src, gen(peerInc, age[src]), fmt.Sprint("k", rng.IntN(4)), int64(rng.IntN(100)))
					case r == 13: // stale
						m = gaugesDelta(src, gen(peerInc, age[src]), "k0", -1)
					case r == 14: // a gap
						age[src] += 2
						m = gaugesDelta(src, gen(peerInc, age[src]), "k1", -2)
					case r == 15: // malformed
						age[src]++
						m = gaugesDelta(src, gen(peerInc, age[src]), "k2", -3)
						m.Data = []byte{7}
					case r == 16: // an unknown wire version
						m = gaugesDelta(src, gen(peerInc, age[src]+1), "k3", -4)
						m.WireVersion = 9
					case r == 17: // a snapshot where the sender stands
						m = gaugesSnapshot(src, gen(peerInc, age[src]), dstatetest.GaugesView{"s": int64(age[src])})
					case r == 18:
						m = request("gauges", src)
					default: // a notice of a newer generation
						m = feed(src, notice("gauges", src, gen(peerInc, age[src]+1)))
					}
					msgs = append(msgs, m)
				}
				got := describe(run.HandleDeltaRun(deltaRun(msgs...)))
				var want []string
				for _, m := range msgs {
					c := *m
					want = append(want, describe(turn.HandleWire(&c))...)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("actions:\n run     %q\n in turn %q", got, want)
				}
				for _, id := range []dstate.NodeID{"n2", "n3"} {
					a, aok := run.Views().Get(id)
					b, bok := turn.Views().Get(id)
					if aok != bok || aok && (a.Generation != b.Generation || a.Value.String() != b.Value.String() ||
						a.Pending != b.Pending || a.ModifiedUnixMs != b.ModifiedUnixMs || run.Views().SyncedAt(a) != turn.Views().SyncedAt(b)) {
						t.Fatalf("view of %s: run %+v, in turn %+v", id, a, b)
					}
				}
				wantMetrics(t, run.Metrics(), turn.Metrics())
				if a, b := run.PeerStatuses(), turn.PeerStatuses(); fmt.Sprint(a) != fmt.Sprint(b) {
					t.Fatalf("peer statuses:\n run     %+v\n in turn %+v", a, b)
				}
			}
		})
	}
}

// newRunPair returns two engines in the same state: n2's and n3's views
// at v500000:5, on clocks that do not move.
func newRunPair(t *testing.T) (*gaugesEngine, *gaugesEngine) {
	t.Helper()
	var out [2]*gaugesEngine
	for i := range out {
		e, _ := newGaugesEngine(t, dstate.DefaultStateConfig())
		for _, id := range []dstate.NodeID{"n2", "n3"} {
			e.OnNodeJoined(id)
			e.HandleWire(gaugesSnapshot(id, gen(peerInc, 5), dstatetest.GaugesView{"a": 1}))
		}
		out[i] = e
	}
	return out[0], out[1]
}

// countingClock is a TestClock that counts the calls to Now.
type countingClock struct {
	*dstatetest.TestClock
	nows int
}

func (c *countingClock) Now() time.Time { c.nows++; return c.TestClock.Now() }

// TestDeltaRunReadsTheClockOnce checks that the deltas of a run, which
// arrived together, are recorded as received at one reading of the clock,
// where HandleWire reads it for each delta.
func TestDeltaRunReadsTheClockOnce(t *testing.T) {
	const n = 50
	clock := &countingClock{TestClock: dstatetest.NewTestClock()}
	e, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, self, dstate.DefaultStateConfig(), clock, dstatetest.NewGauges())
	if err != nil {
		t.Fatal(err)
	}
	wantActions(t, e.HandleWire(gaugesSnapshot("n2", gen(peerInc, 0), dstatetest.GaugesView{"a": 1})))
	deltas := func(from int) []*dstate.WireMessage {
		var ms []*dstate.WireMessage
		for k := from; k < from+n; k++ {
			ms = append(ms, gaugesDelta("n2", gen(peerInc, uint64(k)), "a", int64(k)))
		}
		return ms
	}

	clock.nows = 0
	for _, m := range deltas(1) {
		wantActions(t, e.HandleWire(m))
	}
	inTurn := clock.nows
	clock.nows = 0
	wantActions(t, e.HandleDeltaRun(deltaRun(deltas(1+n)...)))
	if clock.nows != 1 || inTurn < n {
		t.Errorf("the clock was read %d times for a run of %d deltas (want 1) and %d times for them one by one (want ≥ %d)", clock.nows, n, inTurn, n)
	}
	if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 2*n) {
		t.Errorf("after the run: n2's view is at %s, want %s", v.Generation, gen(peerInc, 2*n))
	}
	wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, DeltasReceived: 2 * n})

	// Another message in between reads the clock as it would alone, and
	// the deltas after it read it again: none is recorded as received
	// before a message handled ahead of it.
	req := func() *dstate.WireMessage {
		return &dstate.WireMessage{Kind: dstate.KindRequestSnapshot, State: e.Name(), Source: "n2"}
	}
	clock.nows = 0
	e.HandleWire(req())
	alone := clock.nows
	clock.nows = 0
	e.HandleDeltaRun(deltaRun(append(append(deltas(1+2*n), req()), deltas(1+3*n)...)...))
	if clock.nows != 2+alone {
		t.Errorf("the clock was read %d times for two sequences of deltas around a request that reads it %d times alone, want %d", clock.nows, alone, 2+alone)
	}
	if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 4*n) {
		t.Errorf("after the second run: n2's view is at %s, want %s", v.Generation, gen(peerInc, 4*n))
	}
}
