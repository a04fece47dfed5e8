package dstate_test

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// garbageSeeds are inputs that must fail cleanly.
var garbageSeeds = [][]byte{
	nil,
	{0},
	{1},
	{1, 0},
	{1, 1},
	{1, 4, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
	{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	{2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	{1, 4, 0, 0, 0xe8, 0x07, 0, 0, 0, 0},
	[]byte("\x01\x02\x06gauges\x02n2\x01\x02\x01\x00\x00\x00\x03abc\x00"),
}

func FuzzDecodeWire(f *testing.F) {
	for _, g := range goldenMessages {
		f.Add(readGolden(f, g.name))
	}
	for _, g := range garbageSeeds {
		f.Add(g)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var m dstate.WireMessage
		var err error
		// A notice takes at least 3 input bytes and decodes to a struct of
		// two strings and a generation: a small multiple of its bytes.
		fuzzcheck.Alloc(t, "DecodeWire", 0, len(in), 32, func() { m, err = dstate.DecodeWire(in) })
		if err != nil {
			if !errors.Is(err, dstate.ErrMalformed) && !errors.Is(err, dstate.ErrUnknownVersion) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrUnknownVersion", err)
			}
			return
		}
		// Everything decoded is bounded by the input: Data aliases it and
		// every notice takes at least 4 bytes of it.
		// A digest's entries share the message's Source and take at least
		// 3 bytes each.
		names, perEntry := len(m.State)+len(m.Source), 4
		for _, n := range m.Notifications {
			names += len(n.State)
			if m.Kind != dstate.KindDigest {
				names += len(n.Source)
			} else if n.Source != m.Source {
				t.Fatalf("digest entry source %q, want the message's %q", n.Source, m.Source)
			}
		}
		if m.Kind == dstate.KindDigest {
			perEntry = 3
		}
		if len(m.Data)+names > len(in) {
			t.Fatalf("decoded %d payload and %d name bytes from %d input bytes", len(m.Data), names, len(in))
		}
		if len(m.Notifications)*perEntry > len(in) {
			t.Fatalf("decoded %d notifications from %d input bytes", len(m.Notifications), len(in))
		}
		if cap(m.Data) != len(m.Data) {
			t.Fatalf("Data cap %d, want %d", cap(m.Data), len(m.Data))
		}
		// Varints need not be minimal on input, so compare messages rather
		// than bytes.
		enc := dstate.EncodeWire(&m)
		if got, want := dstate.EncodedSize(&m), len(enc); got != want {
			t.Fatalf("EncodedSize: got %d, want %d", got, want)
		}
		if len(enc) > len(in) {
			t.Fatalf("re-encoding is %d bytes, longer than the %d input bytes", len(enc), len(in))
		}
		m2, err := dstate.DecodeWire(enc)
		if err != nil {
			t.Fatalf("decoding the re-encoding of %s: %v", m.String(), err)
		}
		if !equalMessages(m, m2) {
			t.Fatalf("round trip: got %s, want %s", m2.String(), m.String())
		}
		_ = m.String()
	})
}

// fuzzState is the tiny state of FuzzEngineHandleWire: a counter whose view
// is 8 little-endian bytes (wire version 1) and whose deltas are 8-byte
// increments. Version 2 is "unknown" so the mismatch policy is exercised.
const fuzzStateName = "fz"

func fuzzCodec() dstate.Codec[uint64, uint64] {
	read := func(data []byte, wv uint32) (uint64, error) {
		if wv != 1 {
			return 0, dstate.UnknownVersionError(wv)
		}
		if len(data) != 8 {
			return 0, dstate.MalformedError("fz: %d bytes, want 8", len(data))
		}
		return binary.LittleEndian.Uint64(data), nil
	}
	return dstate.Codec[uint64, uint64]{
		Project:    func(s *uint64) uint64 { return *s },
		EncodeView: func(v uint64) ([]byte, error) { return binary.LittleEndian.AppendUint64(nil, v), nil },
		DecodeView: read,
		ApplyDelta: func(v uint64, data []byte, wv uint32) (uint64, error) {
			d, err := read(data, wv)
			return v + d, err
		},
	}
}

// withFuzzChunks streams the fuzz codec's views as 8 chunks of one byte
// (with a chunk size of 1), so that every snapshot is a stream.
func withFuzzChunks(c *dstate.Codec[uint64, uint64]) {
	c.EncodeViewChunks = func(v uint64, _ int, emit func([]byte) error) error {
		for _, b := range binary.LittleEndian.AppendUint64(nil, v) {
			if err := emit([]byte{b}); err != nil {
				return err
			}
		}
		return nil
	}
	c.NewViewDecoder = func(wv uint32) (dstate.ViewDecoder[uint64], error) {
		if wv != 1 {
			return nil, dstate.UnknownVersionError(wv)
		}
		return &fuzzChunks{}, nil
	}
}

type fuzzChunks struct{ b []byte }

func (d *fuzzChunks) Add(chunk []byte) error {
	if len(d.b)+len(chunk) > 8 {
		return dstate.MalformedError("fz: stream over 8 bytes")
	}
	d.b = append(d.b, chunk...)
	return nil
}

func (d *fuzzChunks) Finish() (uint64, error) {
	if len(d.b) != 8 {
		return 0, dstate.MalformedError("fz: stream of %d bytes, want 8", len(d.b))
	}
	return binary.LittleEndian.Uint64(d.b), nil
}

// frames splits a fuzz input into messages: each frame is one length byte
// followed by that many bytes (the last frame takes what is left).
func frames(in []byte) [][]byte {
	var out [][]byte
	for len(in) > 0 {
		n := min(int(in[0]), len(in)-1)
		out = append(out, in[1:1+n])
		in = in[1+n:]
	}
	return out
}

func frame(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = append(out, byte(len(m)))
		out = append(out, m...)
	}
	return out
}

func FuzzEngineHandleWire(f *testing.F) {
	view := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	snap := dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: fuzzStateName, Source: "n2",
		Generation: dstate.Generation{Incarnation: 5, Age: 1}, WireVersion: 1, SentUnixMs: 999_000, Data: view(7)}
	delta := snap
	delta.Kind, delta.Generation.Age, delta.Data = dstate.KindDeltaUpdate, 2, view(1)
	gap := delta
	gap.Generation.Age = 9
	badVersion := snap
	badVersion.WireVersion, badVersion.Generation.Age = 2, 3
	req := dstate.WireMessage{Kind: dstate.KindRequestSnapshot, State: fuzzStateName, Source: "n3"}
	feed := dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: "n3", Notifications: []dstate.ChangeNotification{
		{State: fuzzStateName, Source: "n2", Generation: dstate.Generation{Incarnation: 5, Age: 4}},
		{State: fuzzStateName, Source: "n1", Generation: dstate.Generation{Incarnation: 9, Age: 9}},
	}}
	enc := func(m dstate.WireMessage) []byte { return dstate.EncodeWire(&m) }
	f.Add(byte(0), frame(enc(snap), enc(delta), enc(gap), enc(delta)))
	f.Add(byte(1), frame(enc(snap), enc(badVersion), enc(delta), enc(snap)))
	f.Add(byte(2), frame(enc(feed), enc(snap), enc(feed), enc(req)))
	f.Add(byte(3), frame(enc(req), enc(delta), enc(snap)))
	chunk := snap
	chunk.Kind, chunk.StreamID, chunk.Data = dstate.KindSnapshotChunk, 1, []byte{7}
	chunks := []dstate.WireMessage{chunk}
	for i := range 7 {
		c := chunk
		c.ChunkIndex, c.ChunkOffset, c.ChunkLast, c.Data = uint64(i+1), uint64(i+1), i == 6, []byte{0}
		chunks = append(chunks, c)
	}
	pull := dstate.WireMessage{Kind: dstate.KindSnapshotPull, State: fuzzStateName, Source: "n3"}
	pullNext := pull
	pullNext.Generation, pullNext.StreamID, pullNext.ChunkIndex = dstate.Generation{Incarnation: 5, Age: 1}, 1, 2
	f.Add(byte(8), frame(enc(chunks[0]), enc(chunks[1]), enc(delta), enc(chunks[2]), enc(chunks[3]), enc(chunks[4]), enc(chunks[5]), enc(chunks[6]), enc(chunks[7])))
	f.Add(byte(10), frame(enc(chunks[0]), enc(chunks[2]), enc(chunks[1]), enc(snap), enc(chunks[3])))
	f.Add(byte(9), frame(enc(pull), enc(pullNext), enc(req), enc(pullNext)))
	for _, g := range goldenMessages {
		f.Add(byte(0), frame(readGolden(f, g.name)))
	}
	for _, g := range garbageSeeds {
		f.Add(byte(1), frame(g))
	}
	f.Fuzz(func(t *testing.T, mode byte, in []byte) {
		clock := dstatetest.NewTestClock()
		cfg := dstate.StateConfig{SyncStrategy: dstate.FeedWithPeriodicSyncStrategy(time.Second), PullTimeout: time.Second}
		if mode&1 == 1 {
			cfg.VersionMismatchPolicy = dstate.DropAndWait
		}
		if mode&2 == 2 {
			cfg.SyncStrategy = dstate.ActivePushStrategy()
		}
		codec := fuzzCodec()
		if mode&4 == 4 {
			codec.ApplyDelta = nil
		}
		if mode&8 == 8 {
			withFuzzChunks(&codec)
		}
		e, err := dstate.NewEngine(dstate.EngineConfig[uint64, uint64]{
			Name: fuzzStateName, Node: "n1", WireVersion: 1, State: cfg, Clock: clock, Codec: codec,
		}, 0)
		if err != nil {
			t.Fatal(err)
		}
		e.OnNodeJoined("n2")
		// A stream's encoder is a suspended goroutine until the stream ends:
		// left behind, they would pile up over the iterations.
		defer e.StopStreams()
		// Every message, and the engine's answer to it, is bounded by a
		// multiple of its bytes: no input makes the engine allocate beyond.
		fuzzcheck.Alloc(t, "HandleWire", 0, len(in), engineAllocFactor, func() { handleFrames(t, e, clock, in) })
		// The engine's own view is always present and current.
		own, ok := e.Views().Get("n1")
		if !ok || own.Generation != e.Generation() {
			t.Fatalf("own view %v, want generation %s", own, e.Generation())
		}
		for id, v := range e.Views().All {
			if e.IsDeparted(id) {
				t.Fatalf("departed node %s still has a view", id)
			}
			// A pending generation is newer than the view's, or the
			// placeholder v0:1 (stale until the owner says where it stands).
			if v.HasPending() && !v.Generation.Less(v.Pending) && v.Pending != (dstate.Generation{Age: 1}) {
				t.Fatalf("view of %s at %s has pending %s that is not newer", id, v.Generation, v.Pending)
			}
		}
	})
}

// engineAllocFactor bounds what FuzzEngineHandleWire's engine may allocate
// per input byte: a message of a few bytes is decoded, handled twice and
// followed by a mutation, a query or a membership event, each of which
// allocates a view, an action or a peer entry of a few hundred bytes.
const engineAllocFactor = 256

// handleFrames delivers each frame of in to e (see FuzzEngineHandleWire).
func handleFrames(t *testing.T, e *dstate.Engine[uint64, uint64], clock *dstatetest.TestClock, in []byte) {
	t.Helper()
	for i, b := range frames(in) {
		m, err := dstate.DecodeWire(b)
		if err != nil {
			continue
		}
		e.HandleWire(&m)
		// Fuzzed names rarely match, so deliver each message a second
		// time addressed to this state.
		m.State = fuzzStateName
		for j := range m.Notifications {
			m.Notifications[j].State = fuzzStateName
		}
		for _, a := range e.HandleWire(&m) {
			_ = a.String()
		}
		switch i % 5 {
		case 0:
			e.Mutate(func(s *uint64) { *s++ }, dstate.Default)
		case 1:
			e.Query(time.Second)
			_ = e.Health(time.Second)
		case 2:
			e.OnNodeFailed(m.Source)
			_ = e.PeerStatuses()
		case 3:
			e.OnNodeLeft(m.Source)
			e.PeriodicSync()
		case 4:
			e.OnNodeJoined(m.Source)
		}
		clock.Advance(time.Duration(b[len(b)-1]) * 10 * time.Millisecond)
	}
}

// FuzzDeltaRunIsHandleWireInTurn feeds any sequence of messages to one
// engine through HandleWire, one at a time, and to another through
// HandleDeltaRun, cut into runs where split's bits say: both must end with
// the same actions, views and metrics.
func FuzzDeltaRunIsHandleWireInTurn(f *testing.F) {
	view := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	snap := dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: fuzzStateName, Source: "n2",
		Generation: dstate.Generation{Incarnation: 5, Age: 1}, WireVersion: 1, SentUnixMs: 999_000, Data: view(7)}
	enc := func(m dstate.WireMessage) []byte { return dstate.EncodeWire(&m) }
	deltas := [][]byte{enc(snap)}
	for age := range uint64(6) {
		d := snap
		d.Kind, d.Generation.Age, d.Data = dstate.KindDeltaUpdate, age+2, view(age)
		if age == 3 {
			d.Source = "n3"
		}
		deltas = append(deltas, enc(d))
	}
	f.Add(uint64(0), frame(deltas...))
	f.Add(uint64(0b1010), frame(deltas...))
	f.Add(^uint64(0), frame(append(deltas, deltas...)...))
	for _, g := range garbageSeeds {
		f.Add(uint64(3), frame(g))
	}
	f.Fuzz(func(t *testing.T, split uint64, in []byte) {
		var msgs []dstate.WireMessage
		for _, b := range frames(in) {
			m, err := dstate.DecodeWire(b)
			if err != nil {
				continue
			}
			m.State = fuzzStateName // fuzzed names rarely match
			msgs = append(msgs, m)
		}
		var engines [2]*dstate.Engine[uint64, uint64]
		for i := range engines {
			e, err := dstate.NewEngine(dstate.EngineConfig[uint64, uint64]{
				Name: fuzzStateName, Node: "n1", WireVersion: 1, Clock: dstatetest.NewTestClock(), Codec: fuzzCodec(),
				State: dstate.StateConfig{SyncStrategy: dstate.ActivePushStrategy(), PullTimeout: time.Second},
			}, 0)
			if err != nil {
				t.Fatal(err)
			}
			e.OnNodeJoined("n2")
			e.OnNodeJoined("n3")
			defer e.StopStreams()
			engines[i] = e
		}
		turn, run := engines[0], engines[1]
		var want, got []string
		for i := range msgs {
			m := msgs[i]
			for _, a := range turn.HandleWire(&m) {
				want = append(want, a.String())
			}
		}
		start := 0
		for i := range msgs {
			if i == len(msgs)-1 || split>>(i%64)&1 == 1 {
				for _, a := range run.HandleDeltaRun(slices.Clone(msgs[start : i+1])) {
					got = append(got, a.String())
				}
				start = i + 1
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("actions:\n run     %q\n in turn %q", got, want)
		}
		if a, b := run.Metrics(), turn.Metrics(); a != b {
			t.Fatalf("metrics:\n run     %+v\n in turn %+v", a, b)
		}
		for id, b := range turn.Views().All {
			a, ok := run.Views().Get(id)
			if !ok || a.Generation != b.Generation || a.Value != b.Value || a.Pending != b.Pending || a.ModifiedUnixMs != b.ModifiedUnixMs {
				t.Fatalf("view of %s: run %+v, in turn %+v", id, a, b)
			}
		}
		if run.Views().Len() != turn.Views().Len() {
			t.Fatalf("views: run holds %d, in turn %d", run.Views().Len(), turn.Views().Len())
		}
	})
}
