package dstate_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// huge is a generation far ahead of anything a peer holds: what a forged
// notice announces to pin a view stale.
var huge = gen(1<<62, 1<<40)

// TestNoticeAboutAnotherNodeIsRefused: a member's feed may only speak for
// that member. A notice about another node, however high its generation,
// marks nothing stale, is counted, and is reported once per feed.
func TestNoticeAboutAnotherNodeIsRefused(t *testing.T) {
	setup := func(t *testing.T) *counterEngine {
		e, _ := newCounterEngine(t, dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy()})
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		e.HandleWire(counterSnapshot("n3", gen(peerInc, 1), 1))
		return e
	}
	t.Run("the victim's view stays fresh", func(t *testing.T) {
		e := setup(t)
		wantActions(t, e.HandleWire(feed("n3", notice("counter", "n2", huge))),
			"rejected(n3, counter@n2 v4611686018427387904:1099511627776)")
		if v := view(t, e.Views(), "n2"); v.HasPending() {
			t.Errorf("n2's view: pending %s, want none", v.Pending)
		}
		r := e.Query(time.Hour)
		if !r.Fresh() {
			t.Errorf("query: stale %v, want fresh", r.Stale)
		}
		wantActions(t, r.Actions)
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 2, NoticesRefused: 1})
	})
	t.Run("the owner's next write is taken as usual", func(t *testing.T) {
		e := setup(t)
		e.HandleWire(feed("n3", notice("counter", "n2", huge)))
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 6), 6))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 6) || v.HasPending() {
			t.Errorf("n2's view: %s pending %s, want v500000:6 and none", v.Generation, v.Pending)
		}
		if r := e.Query(time.Hour); !r.Fresh() {
			t.Errorf("query: stale %v, want fresh", r.Stale)
		}
	})
	t.Run("the sender's own notices in the same feed still count", func(t *testing.T) {
		e := setup(t)
		wantActions(t, e.HandleWire(feed("n3",
			notice("counter", "n2", huge), notice("counter", self, huge), notice("counter", "n3", gen(peerInc, 2)),
			notice("counter", "n9", huge))),
			"rejected(n3, counter@n2 v4611686018427387904:1099511627776)")
		if v := view(t, e.Views(), "n3"); v.Pending != gen(peerInc, 2) {
			t.Errorf("n3's view: pending %s, want v500000:2", v.Pending)
		}
		for _, id := range []dstate.NodeID{self, "n2"} {
			if v := view(t, e.Views(), id); v.HasPending() {
				t.Errorf("%s's view: pending %s, want none", id, v.Pending)
			}
		}
		if got := e.Query(time.Hour).Stale; !slices.Equal(got, []dstate.NodeID{"n3"}) {
			t.Errorf("stale: got %v, want [n3]", got)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 2, NoticesReceived: 1, NoticesRefused: 3,
			SnapshotRequestsSent: 1})
	})
}

// TestOwnersAnswerOverrulesANoticeAheadOfIt: even the owner's own notice
// cannot pin its view stale. The answer to a pull sent after the notice
// says where the owner stands, and a pending generation above it is
// cleared, counted and reported.
func TestOwnersAnswerOverrulesANoticeAheadOfIt(t *testing.T) {
	setup := func(t *testing.T) (*counterEngine, dstate.QueryResult) {
		e, _ := newCounterEngine(t, dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy()})
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		wantActions(t, e.HandleWire(feed("n2", notice("counter", "n2", huge))))
		r := e.Query(time.Hour)
		if !slices.Equal(r.Stale, []dstate.NodeID{"n2"}) {
			t.Fatalf("after the notice: stale %v, want [n2]", r.Stale)
		}
		wantActions(t, r.Actions, "send(n2, RequestSnapshot(counter by n1))")
		return e, r
	}
	overruled := "rejected(n2, counter@n2 v4611686018427387904:1099511627776)"
	t.Run("an answer at the generation held", func(t *testing.T) {
		e, _ := setup(t)
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5)), overruled)
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 5) || v.HasPending() {
			t.Errorf("n2's view: %s pending %s, want v500000:5 and none", v.Generation, v.Pending)
		}
		if r := e.Query(time.Hour); !r.Fresh() {
			t.Errorf("query after the answer: stale %v, want fresh", r.Stale)
		}
		wantMetrics(t, e.Metrics(), dstate.SyncMetrics{SnapshotsReceived: 1, SnapshotsConfirmed: 1, NoticesReceived: 1,
			NoticesOverruled: 1, SnapshotRequestsSent: 1})
	})
	t.Run("an answer at a newer generation", func(t *testing.T) {
		e, _ := setup(t)
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc, 6), 6)), overruled)
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 6) || v.Value.Count != 6 || v.HasPending() {
			t.Errorf("n2's view: %s count %d pending %s, want v500000:6, 6 and none", v.Generation, v.Value.Count, v.Pending)
		}
		if r := e.Query(time.Hour); !r.Fresh() {
			t.Errorf("query after the answer: stale %v, want fresh", r.Stale)
		}
	})
	t.Run("an answer at or above the notice is no sign of trouble", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy()})
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 7))))
		e.Query(time.Hour)
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc, 7), 7)))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 7) || v.HasPending() {
			t.Errorf("n2's view: %s pending %s, want v500000:7 and none", v.Generation, v.Pending)
		}
		if m := e.Metrics(); m.NoticesOverruled != 0 {
			t.Errorf("overruled: got %d, want 0", m.NoticesOverruled)
		}
	})
	t.Run("an answer to a pull sent before the notice does not overrule it", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy()})
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		wantActions(t, e.Pull([]dstate.NodeID{"n2"}), "send(n2, RequestSnapshot(counter by n1))")
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 7))))
		wantActions(t, e.Pull([]dstate.NodeID{"n2"})) // one request in flight already
		// The owner answered before it reached generation 7: the pending
		// generation stands.
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5)))
		if v := view(t, e.Views(), "n2"); v.Pending != gen(peerInc, 7) {
			t.Errorf("n2's view: pending %s, want v500000:7", v.Pending)
		}
		// A pull that leaves after the notice is answered with authority.
		wantActions(t, e.Pull([]dstate.NodeID{"n2"}), "send(n2, RequestSnapshot(counter by n1))")
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc, 6), 6)), "rejected(n2, counter@n2 v500000:7)")
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 6) || v.HasPending() {
			t.Errorf("n2's view: %s pending %s, want v500000:6 and none", v.Generation, v.Pending)
		}
	})
	t.Run("a snapshot nobody asked for keeps the pending generation", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy()})
		e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 5))
		e.HandleWire(feed("n2", notice("counter", "n2", gen(peerInc, 7))))
		wantActions(t, e.HandleWire(counterSnapshot("n2", gen(peerInc, 6), 6)))
		if v := view(t, e.Views(), "n2"); v.Generation != gen(peerInc, 6) || v.Pending != gen(peerInc, 7) {
			t.Errorf("n2's view: %s pending %s, want v500000:6 pending v500000:7", v.Generation, v.Pending)
		}
	})
}
