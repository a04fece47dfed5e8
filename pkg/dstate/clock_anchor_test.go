package dstate_test

import (
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// On the SystemClock the engine reads only the monotonic clock on its hot
// paths and carries the wall clock forward from a full reading at most
// 100 ms old. Across several of those readings a mutation's modified time
// stays within the wall clock's milliseconds around it (give or take one),
// and the freshness of the own view and of a peer's view (after a delta)
// stays within the instants around the call.
func TestSystemClockReadingsStayExact(t *testing.T) {
	e, err := dstate.NewDeltaEngine(loadState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, Load{})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := loadState{}.EncodeView(Load{})
	in := &dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "load", Source: "n2", Generation: dstate.Generation{Incarnation: benchInc}, WireVersion: 1, Data: data}
	e.HandleWire(in)
	delta, _ := loadState{}.EncodeDelta(LoadChange{Field: 1, Value: 42})
	in = &dstate.WireMessage{Kind: dstate.KindDeltaUpdate, State: "load", Source: "n2", Generation: in.Generation, WireVersion: 1, Data: delta}

	start := time.Now()
	rounds := 0
	for time.Since(start) < 350*time.Millisecond || rounds < 1000 {
		rounds++
		before := time.Now()
		e.MutateWithDelta(setField(0, int64(rounds)))
		in.Generation.Age++
		e.HandleWire(in)
		after := time.Now()

		// One millisecond of slack: the wall clock carried forward on the
		// monotonic clock may differ from the wall clock by what NTP slews
		// in 100 ms (at most 50 µs), which can cross a millisecond.
		if ms := e.State().ModifiedUnixMs; ms < before.UnixMilli()-1 || ms > after.UnixMilli()+1 {
			t.Fatalf("round %d: modified %d ms, outside the wall clock's %d..%d", rounds, ms, before.UnixMilli(), after.UnixMilli())
		}
		views := e.Views()
		for _, id := range []dstate.NodeID{"n1", "n2"} {
			v, ok := views.Get(id)
			if !ok {
				t.Fatalf("round %d: no view of %s", rounds, id)
			}
			if at := views.SyncedAt(v); at.Before(before) || at.After(after) {
				t.Fatalf("round %d: %s synced at %v, outside %v..%v", rounds, id, at, before, after)
			}
		}
	}
	if got := e.Metrics().DeltasReceived; got != uint64(rounds) {
		t.Fatalf("applied %d deltas, want %d", got, rounds)
	}
}
