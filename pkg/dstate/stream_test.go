package dstate_test

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

type chunkEngine = dstate.DeltaEngine[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]

// streamPair is an owner n2 of a chunked gauges state and a receiver n1,
// with the messages between them queued (encoded, FIFO) until run.
type streamPair struct {
	t       *testing.T
	clock   *dstatetest.TestClock
	owner   *chunkEngine
	recv    *chunkEngine
	engines map[dstate.NodeID]*chunkEngine
	queue   []queued
	// drop, when set, is asked about each message before it is delivered.
	drop func(m *dstate.WireMessage) bool
	// chunks counts the chunk messages delivered; maxQueued the most chunk
	// messages queued at once.
	chunks, maxQueued int
}

type queued struct {
	to    dstate.NodeID
	frame []byte
}

const streamChunk = 256

func newStreamPair(t *testing.T, keys int, def dstate.DeltaDistributedState[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]) *streamPair {
	t.Helper()
	clock := dstatetest.NewTestClock()
	initial := dstatetest.NewGauges()
	for i := range keys {
		initial.Values[fmt.Sprintf("key-%05d", i)] = int64(i)
	}
	owner, err := dstate.NewDeltaEngine(def, "n2", dstate.DefaultStateConfig(), clock, initial)
	if err != nil {
		t.Fatal(err)
	}
	recv, err := dstate.NewDeltaEngine(def, "n1", dstate.DefaultStateConfig(), clock, dstatetest.NewGauges())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []*chunkEngine{owner, recv} {
		e.SetSnapshotChunking(streamChunk, 2)
	}
	recv.OnNodeJoined("n2") // its placeholder view (its own snapshot is not needed)
	return &streamPair{t: t, clock: clock, owner: owner, recv: recv, engines: map[dstate.NodeID]*chunkEngine{"n1": recv, "n2": owner}}
}

func chunked() dstatetest.ChunkedGaugesState { return dstatetest.ChunkedGaugesState{} }

func (p *streamPair) post(from dstate.NodeID, acts []dstate.Action) {
	for _, a := range acts {
		switch a.Kind {
		case dstate.ActionSend:
			p.queue = append(p.queue, queued{a.Target, dstate.EncodeWire(&a.Message)})
		case dstate.ActionBroadcast:
			to := dstate.NodeID("n1")
			if from == "n1" {
				to = "n2"
			}
			p.queue = append(p.queue, queued{to, dstate.EncodeWire(&a.Message)})
		}
	}
	n := 0
	for _, q := range p.queue {
		if q.frame[1] == byte(dstate.KindSnapshotChunk) {
			n++
		}
	}
	p.maxQueued = max(p.maxQueued, n)
}

// step delivers the first queued message; it reports whether there was one.
func (p *streamPair) step() bool {
	if len(p.queue) == 0 {
		return false
	}
	q := p.queue[0]
	p.queue = p.queue[1:]
	m, err := dstate.DecodeWire(q.frame)
	if err != nil {
		p.t.Fatalf("decode: %v", err)
	}
	if p.drop != nil && p.drop(&m) {
		return true
	}
	if m.Kind == dstate.KindSnapshotChunk {
		p.chunks++
	}
	p.post(q.to, p.engines[q.to].HandleWire(&m))
	return true
}

func (p *streamPair) run() {
	for i := 0; p.step(); i++ {
		if i > 100_000 {
			p.t.Fatal("messages never stop")
		}
	}
}

func (p *streamPair) join() { p.post("n2", p.owner.OnNodeJoined("n1")) }

// synced fails unless the receiver holds the owner's current view.
func (p *streamPair) synced() {
	p.t.Helper()
	own, _ := p.owner.Views().Get("n2")
	got, ok := p.recv.Views().Get("n2")
	if !ok || got.Generation != own.Generation || !maps.Equal(got.Value, own.Value) {
		p.t.Fatalf("receiver holds %v (%d keys), want %v (%d keys)", got.Generation, len(got.Value), own.Generation, len(own.Value))
	}
}

func TestStreamJoin(t *testing.T) {
	p := newStreamPair(t, 300, chunked())
	p.join()
	if p.queue[0].frame[1] != byte(dstate.KindSnapshotChunk) {
		t.Fatalf("join sent kind %d, want a chunk", p.queue[0].frame[1])
	}
	p.run()
	p.synced()
	if p.chunks < 10 {
		t.Fatalf("%d chunks, want the view in many", p.chunks)
	}
	if p.maxQueued > 2 {
		t.Fatalf("%d chunks queued at once, over the window of 2", p.maxQueued)
	}
	if m := p.recv.Metrics(); m.SnapshotsReceived != 1 || m.SyncFailures != 0 {
		t.Fatalf("receiver metrics %+v", m)
	}
}

func TestStreamSmallViewIsASnapshot(t *testing.T) {
	p := newStreamPair(t, 3, chunked())
	p.join()
	if len(p.queue) != 1 || p.queue[0].frame[1] != byte(dstate.KindFullSnapshot) {
		t.Fatalf("a one-chunk view should travel as a FullSnapshot; queued %d, kind %d", len(p.queue), p.queue[0].frame[1])
	}
	p.run()
	p.synced()
}

// A stream cut after every possible chunk: the receiver keeps its view,
// discards the partial once the pull timeout passes, and a new stream
// completes.
func TestStreamInterruptedAtEveryChunk(t *testing.T) {
	total := 0
	{
		p := newStreamPair(t, 100, chunked())
		p.join()
		p.run()
		total = p.chunks
	}
	for cut := 1; cut < total; cut++ {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			p := newStreamPair(t, 100, chunked())
			seen := 0
			p.drop = func(m *dstate.WireMessage) bool {
				if m.Kind == dstate.KindSnapshotChunk {
					seen++
					return seen > cut
				}
				return false
			}
			p.join()
			p.run()
			if v, ok := p.recv.Views().Get("n2"); !ok || !v.Generation.IsZero() {
				t.Fatalf("the view moved to %v with the stream cut", v.Generation)
			}
			p.drop = nil
			p.clock.Advance(dstate.DefaultPullTimeout)
			// Any message makes the receiver notice the stalled stream.
			p.post("n1", p.recv.HandleWire(&dstate.WireMessage{Kind: dstate.KindDigest, Source: "n2",
				Notifications: []dstate.ChangeNotification{{State: "gauges", Source: "n2", Generation: p.owner.Generation()}}}))
			if len(p.queue) == 0 || p.queue[0].frame[1] != byte(dstate.KindSnapshotPull) {
				t.Fatalf("the receiver did not ask for a new stream: %d queued", len(p.queue))
			}
			p.run()
			p.synced()
			if s := peerStatus(t, p.recv.PeerStatuses(), "n2"); s.ConsecutiveFailures != 0 {
				t.Fatalf("failures after the new stream: %+v", s)
			}
		})
	}
}

// The owner moves on while a stream is in flight: a stream of the newer
// generation replaces the partial one.
func TestStreamNewerGenerationMidStream(t *testing.T) {
	p := newStreamPair(t, 100, chunked())
	p.join()
	for range 3 {
		p.step()
	}
	p.queue = nil // the old stream's messages are lost
	p.owner.MutateWithDelta(dstatetest.Set("new", 1))
	p.post("n2", p.owner.OnNodeJoined("n1")) // a new stream, of the newer generation
	p.run()
	p.synced()
}

// Deltas sent while a stream is in flight are kept and applied after it.
func TestStreamDeltasInterleaved(t *testing.T) {
	p := newStreamPair(t, 100, chunked())
	p.join()
	for i := range 5 {
		p.step()
		p.post("n2", p.owner.MutateWithDelta(dstatetest.Set(fmt.Sprint("d", i), int64(i))).Actions)
	}
	p.run()
	p.synced()
	if m := p.recv.Metrics(); m.DeltasReceived != 5 || m.SnapshotRequestsSent != 0 {
		t.Fatalf("receiver: %d deltas applied, %d requests; want 5 and 0", m.DeltasReceived, m.SnapshotRequestsSent)
	}
}

// A stream that passes the receiver's MaxSnapshot is refused at the chunk
// that passes it, and the owner told to stop.
func TestStreamOverMaxSnapshot(t *testing.T) {
	p := newStreamPair(t, 100, chunked())
	p.recv.SetSizeLimits(dstate.DecodeLimits{MaxSnapshot: 3 * streamChunk})
	p.join()
	p.run()
	if v, ok := p.recv.Views().Get("n2"); !ok || !v.Generation.IsZero() {
		t.Fatalf("the view moved to %v", v.Generation)
	}
	// The limit passes at the third chunk; the owner stops once told,
	// with at most its window in flight.
	if p.chunks > 3+2+2 {
		t.Fatalf("%d chunks delivered: the owner went on after the limit", p.chunks)
	}
	s := peerStatus(t, p.recv.PeerStatuses(), "n2")
	if !strings.Contains(s.LastError, "snapshot limit") {
		t.Fatalf("LastError %q does not name the limit", s.LastError)
	}
}

// A receiver without streams (a release before them, or a definition
// without chunks) drops the join's chunks and pulls the whole snapshot; an
// owner without streams is asked with RequestSnapshot.
func TestStreamMixedVersions(t *testing.T) {
	t.Run("old receiver", func(t *testing.T) {
		p := newStreamPair(t, 100, chunked())
		old, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, "n1", dstate.DefaultStateConfig(), p.clock, dstatetest.NewGauges())
		if err != nil {
			t.Fatal(err)
		}
		p.recv = old
		p.engines["n1"] = old
		old.OnNodeJoined("n2")
		p.join()
		p.run()
		p.clock.Advance(dstate.DefaultPullTimeout)
		p.post("n1", old.HandleWire(&dstate.WireMessage{Kind: dstate.KindDigest, Source: "n2",
			Notifications: []dstate.ChangeNotification{{State: "gauges", Source: "n2", Generation: p.owner.Generation()}}}))
		if p.queue[0].frame[1] != byte(dstate.KindRequestSnapshot) {
			t.Fatalf("old receiver sent kind %d", p.queue[0].frame[1])
		}
		p.step()
		if len(p.queue) != 1 || p.queue[0].frame[1] != byte(dstate.KindFullSnapshot) {
			t.Fatalf("the owner should answer an old receiver with a FullSnapshot")
		}
		p.run()
		p.synced()
	})
	t.Run("old owner", func(t *testing.T) {
		p := newStreamPair(t, 100, chunked())
		initial := dstatetest.NewGauges()
		initial.Values["a"] = 1
		old, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, "n2", dstate.DefaultStateConfig(), p.clock, initial)
		if err != nil {
			t.Fatal(err)
		}
		p.owner = old
		p.engines["n2"] = old
		p.clock.Advance(dstate.DefaultPullTimeout)
		p.post("n1", p.recv.HandleWire(&dstate.WireMessage{Kind: dstate.KindDigest, Source: "n2",
			Notifications: []dstate.ChangeNotification{{State: "gauges", Source: "n2", Generation: old.Generation()}}}))
		if p.queue[0].frame[1] != byte(dstate.KindRequestSnapshot) {
			t.Fatalf("receiver sent kind %d to an owner not known to stream", p.queue[0].frame[1])
		}
		p.run()
		p.synced()
	})
}

// An owner that leaves mid-stream: the receiver drops the partial and
// ignores what is still in flight; the owner's stream to a receiver that
// stops pulling is abandoned after the pull timeout.
func TestStreamDeadPeer(t *testing.T) {
	p := newStreamPair(t, 100, chunked())
	p.join()
	for range 3 {
		p.step()
	}
	p.recv.OnNodeLeft("n2")
	p.run()
	if _, ok := p.recv.Views().Get("n2"); ok {
		t.Fatal("a view of the departed owner")
	}
	// The owner's side: the receiver is gone, its pulls never come.
	q := newStreamPair(t, 100, chunked())
	q.join()
	q.queue = nil
	q.clock.Advance(dstate.DefaultPullTimeout)
	q.post("n2", q.owner.HandleWire(&dstate.WireMessage{Kind: dstate.KindSnapshotPull, State: "gauges", Source: "n1",
		Generation: q.owner.Generation(), ChunkIndex: 2}))
	if len(q.queue) != 0 {
		t.Fatalf("the owner went on with an expired stream: %d messages", len(q.queue))
	}
}

// Chunks out of order are discarded and the stream asked for again.
func TestStreamOutOfOrder(t *testing.T) {
	p := newStreamPair(t, 100, chunked())
	p.join()
	p.step() // chunk 0
	for len(p.queue) < 2 || p.queue[0].frame[1] != byte(dstate.KindSnapshotChunk) || p.queue[1].frame[1] != byte(dstate.KindSnapshotChunk) {
		if !p.step() {
			t.Fatal("no two chunks in a row")
		}
	}
	p.queue[0], p.queue[1] = p.queue[1], p.queue[0]
	p.run()
	p.synced()
	if m := p.recv.Metrics(); m.SyncFailures == 0 {
		t.Fatal("the out-of-order chunk was not counted")
	}
}

// A snapshot decoded before the engine handles it (DecodeSnapshotView, on
// any goroutine) is installed as if HandleWire had decoded it, and a
// decode error counts as one.
func TestHandleDecodedSnapshot(t *testing.T) {
	e, _ := newGaugesEngine(t, dstate.DefaultStateConfig())
	m := gaugesSnapshot("n2", gen(peerInc, 3), dstatetest.GaugesView{"a": 1})
	d := e.DecodeSnapshotView(m)
	m.Data = nil // not read again
	e.HandleDecodedSnapshot(m, d)
	if v, ok := e.Views().Get("n2"); !ok || v.Generation != gen(peerInc, 3) || v.Value["a"] != 1 {
		t.Fatalf("view %v", v)
	}
	bad := gaugesSnapshot("n2", gen(peerInc, 4), nil)
	bad.Data = []byte{0xff}
	e.HandleDecodedSnapshot(bad, e.DecodeSnapshotView(bad))
	if v, _ := e.Views().Get("n2"); v.Generation != gen(peerInc, 3) || e.Metrics().SyncFailures != 1 {
		t.Fatalf("after a bad snapshot: view %v, %d failures", v.Generation, e.Metrics().SyncFailures)
	}
}
