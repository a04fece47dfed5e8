package bench

import (
	"runtime"
	"testing"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// TestStreamHeldMemory measures what a streamed snapshot holds beyond the
// views, both ends together, without a transport or a collector's lag:
// two engines of the kv state pass a 64 MiB view chunk by chunk, and after
// each message the live heap (after a GC) is compared with the heap before
// plus the part of the new view built so far. The transfer must hold no
// more than twice the chunk window (the window in flight, the chunk encoded
// ahead, the one being decoded), whatever the view's size.
func TestStreamHeldMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 64 MiB view")
	}
	const keys, keyBytes = 16384, 4096
	initial := make(map[string]int64, keys)
	for k := range keys {
		initial[catchupKey(0, k, keyBytes)] = int64(k)
	}
	clock := dstatetest.NewTestClock()
	lim := dstate.DecodeLimits{MaxSnapshot: 80 << 20}
	owner, err := dstate.NewDeltaEngine(kvState{name: "kv"}, "n0", dstate.DefaultStateConfig(), clock, initial)
	if err != nil {
		t.Fatal(err)
	}
	recv, err := dstate.NewDeltaEngine(kvState{name: "kv"}, "n1", dstate.DefaultStateConfig(), clock, map[string]int64{})
	if err != nil {
		t.Fatal(err)
	}
	owner.SetSizeLimits(lim)
	recv.SetSizeLimits(lim)
	recv.OnNodeJoined("n0")
	initial = nil

	type queued struct {
		to    *dstate.DeltaEngine[map[string]int64, map[string]int64, kvSet, kvSet]
		frame []byte
	}
	var queue []queued
	post := func(from dstate.NodeID, acts []dstate.Action) {
		for _, a := range acts {
			if a.Kind != dstate.ActionSend {
				continue
			}
			to := recv
			if from == "n1" {
				to = owner
			}
			queue = append(queue, queued{to, dstate.EncodeWire(&a.Message)})
		}
		clear(acts) // dispatched: as a host does (see node.Shard.perform)
	}
	live := func() int64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	base := live()
	post("n0", owner.OnNodeJoined("n1"))
	total := int64(0) // the stream's bytes, known at its end
	var received int64
	var samples []struct{ heap, received int64 }
	for len(queue) > 0 {
		q := queue[0]
		queue[0] = queued{}
		queue = queue[1:]
		m, err := dstate.DecodeWireLimits(q.frame, lim)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == dstate.KindSnapshotChunk {
			received += int64(len(m.Data))
			if m.ChunkLast {
				total = int64(m.ChunkOffset) + int64(len(m.Data))
			}
		}
		who := dstate.NodeID("n0")
		if q.to == recv {
			who = "n1"
		}
		q.frame = nil
		post(who, q.to.HandleWire(&m))
		samples = append(samples, struct{ heap, received int64 }{live(), received})
	}
	got, _ := recv.Views().Get("n0")
	if len(got.Value) != keys || total == 0 {
		t.Fatalf("received %d keys in %d bytes, want %d keys streamed", len(got.Value), total, keys)
	}
	view := live() - base // the new view, as the receiver keeps it
	runtime.KeepAlive(owner)
	runtime.KeepAlive(recv)
	worst := int64(0)
	for _, s := range samples {
		// The view built so far: its map, sized at the stream's start
		// (the view less its keys), and the keys of the chunks received
		// (each chunk's bytes are kept as its keys' storage).
		held := s.heap - base - (view - total) - s.received
		worst = max(worst, held)
	}
	window := int64(dstate.DefaultChunkWindow * dstate.DefaultChunkBytes)
	t.Logf("view %.1f MiB in %d messages; held beyond the views at most %.2f MiB (chunk window %.1f MiB)",
		float64(view)/(1<<20), len(samples), float64(worst)/(1<<20), float64(window)/(1<<20))
	if worst > 2*window {
		t.Errorf("the stream held %d bytes beyond the views, over twice the chunk window (%d bytes)", worst, window)
	}
}
