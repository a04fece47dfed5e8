package raftpersist

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Fuzz targets for every decoder of this package: the raft log command
// (through fsm.Apply), one encoded envelope, and a snapshot (through
// fsm.Restore). Raft delivers both commands and snapshots from disk and
// from other servers. Each target asserts that no input panics, that bad
// input fails with ErrBadCommand and says what was wrong, and that
// decoding one input allocates no more than a multiple of its length
// (there is no larger declared limit: every length is checked against
// the bytes that follow).

// checkBadCommand asserts err is an ErrBadCommand that says more than the
// sentinel does.
func checkBadCommand(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrBadCommand) {
		t.Fatalf("%s: %v (%T) does not match ErrBadCommand", what, err, err)
	}
	_, detail, _ := strings.Cut(err.Error(), ErrBadCommand.Error())
	if strings.TrimLeft(detail, ": ") == "" {
		t.Fatalf("%s: %q does not say what was wrong", what, err)
	}
}

// fuzzHistory is what the FSM holds before a fuzzed command or snapshot
// arrives: the fuzzer's envelopes can be newer, older or identical.
func fuzzHistory() []*dstate.StoredEnvelope {
	return []*dstate.StoredEnvelope{
		env("s", "a", 5, 5, "a5"),
		env("s", "b", 1, 0, ""),
		env("t", "a", 2, 9, "t"),
	}
}

// contents is every stored envelope, described with its data.
func contents(f *fsm) map[fsmKey]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make(map[fsmKey]string, len(f.data))
	for k, e := range f.data {
		out[k] = fmt.Sprintf("%s created %d modified %d data %q", envString(e), e.CreatedUnixMs, e.ModifiedUnixMs, e.Data)
	}
	return out
}

// snapshotBytes persists a snapshot of f.
func snapshotBytes(t *testing.T, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil || sink.cancelled {
		t.Fatalf("persist: %v (cancelled %v)", err, sink.cancelled)
	}
	return sink.Bytes()
}

// checkRestores asserts a snapshot of f restores to the same contents.
func checkRestores(t *testing.T, f *fsm) {
	t.Helper()
	g := newFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(snapshotBytes(t, f)))); err != nil {
		t.Fatalf("restoring a snapshot: %v", err)
	}
	if got, want := contents(g), contents(f); !maps.Equal(got, want) {
		t.Fatalf("restored %v, want %v", got, want)
	}
	if got, _ := g.appliedIndex(); got != f.applied {
		t.Fatalf("restored applied index %d, want %d", got, f.applied)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	h := fuzzHistory()
	fuzzcheck.AddBytes(f, [][]byte{
		encodeSaveCommand(sampleEnvs()),
		encodeSaveCommand(nil),
		// Newer, identical, stale and same-generation-other-data saves.
		encodeSaveCommand([]*dstate.StoredEnvelope{env("s", "a", 5, 6, "a6"), h[1], env("t", "a", 2, 8, "old"), env("t", "a", 2, 9, "other")}),
		// Two saves of one key in one command.
		encodeSaveCommand([]*dstate.StoredEnvelope{env("n", "x", 1, 1, "one"), env("n", "x", 1, 2, "two"), env("n", "x", 1, 1, "stale")}),
		encodeSaveCommand([]*dstate.StoredEnvelope{{State: "big", Node: "n", Data: bytes.Repeat([]byte{7}, 300)}}),
		// Bad: unknown version and op, truncated, huge counts and lengths,
		// trailing bytes.
		{2, 1, 0},
		{1, 9, 0},
		{1},
		{1, 1, 200},
		{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		{1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 's'},
		append(encodeSaveCommand(sampleEnvs()), 0),
		encodeSaveCommand(sampleEnvs())[:20],
		{1, 1, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0},
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		fs := newFSM()
		applyCmd(fs, 1, fuzzHistory()...)
		before := contents(fs)
		var out any
		fuzzcheck.Alloc(t, "fsm.Apply", 0, len(in), 64, func() {
			out = fs.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: in})
		})
		resp, ok := out.(*applyResponse)
		if !ok || resp == nil {
			t.Fatalf("Apply returned %T", out)
		}
		if idx, _ := fs.appliedIndex(); idx != 2 {
			t.Fatalf("applied index %d after applying entry 2", idx)
		}
		if resp.err != nil {
			checkBadCommand(t, "Apply", resp.err)
			if got := contents(fs); !maps.Equal(got, before) {
				t.Fatalf("a command that failed to decode changed the state to %v", got)
			}
			return
		}
		envs, err := decodeSaveCommand(in)
		if err != nil {
			t.Fatalf("Apply accepted what decodeSaveCommand rejects: %v", err)
		}
		if len(resp.results) != len(envs) {
			t.Fatalf("%d results for %d envelopes", len(resp.results), len(envs))
		}
		last := map[fsmKey]int{}
		for i, e := range envs {
			last[fsmKey{e.State, e.Node}] = i
		}
		for i, e := range envs {
			stored := fs.get(e.State, e.Node)
			if stored == nil || stored.Generation.Less(e.Generation) {
				t.Fatalf("envelope %d (%s): stored %v", i, envString(e), envString(stored))
			}
			res := resp.results[i]
			if res.fenced && res.stored.Less(e.Generation) {
				t.Fatalf("envelope %d (%s) fenced by the older %s", i, envString(e), res.stored)
			}
			if !res.fenced && last[fsmKey{e.State, e.Node}] == i && !sameEnvelope(stored, e) {
				t.Fatalf("envelope %d (%s) accepted but %s is stored", i, envString(e), envString(stored))
			}
		}
		// Keys the command did not name are untouched.
		after := contents(fs)
		for k, v := range before {
			if _, named := last[k]; !named && after[k] != v {
				t.Fatalf("%v changed from %s to %s", k, v, after[k])
			}
		}
		// Re-encoding the command applies the same way (varints need not
		// be minimal on input, so compare the outcome, not the bytes).
		again := newFSM()
		applyCmd(again, 1, fuzzHistory()...)
		resp2 := applyCmd(again, 2, envs...)
		if resp2.err != nil || !maps.Equal(contents(again), after) {
			t.Fatalf("re-encoded command: %v, state %v, want %v", resp2.err, contents(again), after)
		}
		checkRestores(t, fs)
	})
}

func FuzzDecodeEnvelope(f *testing.F) {
	var seeds [][]byte
	for _, e := range append(sampleEnvs(), fuzzHistory()...) {
		seeds = append(seeds, appendEnvelope(nil, e))
	}
	full := appendEnvelope(nil, sampleEnvs()[0])
	seeds = append(seeds, [][]byte{
		appendEnvelope(nil, &dstate.StoredEnvelope{}),
		full[:len(full)-1], // truncated data
		full[:3],
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},                               // overlong varint
		{0x80, 0x80, 0x80, 0x80, 0x08, 's'},                                                        // huge state name
		{1, 's', 1, 'n', 1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0},                              // storage version over uint32
		{1, 's', 1, 'n', 1, 1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 'd'}, // huge data
	}...)
	fuzzcheck.AddBytes(f, seeds)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := &reader{b: in}
		var e *dstate.StoredEnvelope
		fuzzcheck.Alloc(t, "envelope", 0, len(in), 4, func() { e = r.envelope() })
		if r.err != nil {
			checkBadCommand(t, "envelope", r.err)
			if e != nil {
				t.Fatalf("envelope %s returned with error %v", envString(e), r.err)
			}
			return
		}
		consumed := len(in) - len(r.b)
		if len(e.State)+len(e.Node)+len(e.Data) > consumed {
			t.Fatalf("%s from %d bytes", envString(e), consumed)
		}
		if len(e.Data) > 0 && &e.Data[0] == &in[consumed-len(e.Data)] {
			t.Fatal("Data aliases the input")
		}
		enc := appendEnvelope(nil, e)
		if len(enc) > consumed {
			t.Fatalf("re-encoding %s takes %d bytes, more than the %d read", envString(e), len(enc), consumed)
		}
		r2 := &reader{b: enc}
		e2 := r2.envelope()
		if r2.err != nil || len(r2.b) != 0 || !sameEnvelope(e2, e) {
			t.Fatalf("re-decoding %s: %v, %d bytes left, got %v", envString(e), r2.err, len(r2.b), e2)
		}
	})
}

// snapshotOf persists a snapshot of an FSM holding envs at index applied.
func snapshotOf(t testing.TB, applied uint64, envs ...*dstate.StoredEnvelope) []byte {
	s := &fsmSnapshot{applied: applied, envs: envs}
	sink := &memSink{}
	if err := s.Persist(sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// snapshotHead is a snapshot header declaring count records.
func snapshotHead(applied, count uint64) []byte {
	b := append(bytes.Clone(snapshotMagic), snapshotVersion)
	b = binary.AppendUvarint(b, applied)
	return binary.AppendUvarint(b, count)
}

func FuzzRestoreSnapshot(f *testing.F) {
	good := snapshotOf(f, 7, sampleEnvs()...)
	fuzzcheck.AddBytes(f, [][]byte{
		good,
		snapshotOf(f, 0),
		snapshotOf(f, 1<<40, fuzzHistory()...),
		good[:len(good)-1],
		append(bytes.Clone(good), 0),
		[]byte("DSRP\x02\x00\x00"), // unknown version
		[]byte("DSRX\x01\x00\x00"), // bad magic
		[]byte("DS"),
		// Huge counts and record lengths with nothing behind them.
		snapshotHead(1, 1<<62),
		binary.AppendUvarint(snapshotHead(1, 1), 1<<31),
		binary.AppendUvarint(snapshotHead(1, 1), 1<<40),
		// A record whose envelope does not fill it.
		append(binary.AppendUvarint(snapshotHead(1, 1), 10), appendEnvelope(nil, &dstate.StoredEnvelope{})...),
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		fs := newFSM()
		applyCmd(fs, 1, fuzzHistory()...)
		before := contents(fs)
		var err error
		// The reader's buffer is the one fixed allocation.
		fuzzcheck.Alloc(t, "fsm.Restore", 64<<10, len(in), 64, func() {
			err = fs.Restore(io.NopCloser(bytes.NewReader(in)))
		})
		if err != nil {
			checkBadCommand(t, "Restore", err)
			if got := contents(fs); !maps.Equal(got, before) || fs.restores.Load() != 0 {
				t.Fatalf("a snapshot that failed to decode changed the state to %v", got)
			}
			if idx, _ := fs.appliedIndex(); idx != 1 {
				t.Fatalf("a snapshot that failed to decode moved the applied index to %d", idx)
			}
			return
		}
		if fs.restores.Load() != 1 {
			t.Fatalf("%d restores counted", fs.restores.Load())
		}
		if n := fs.len(); n*(minEnvelopeSize+1) > len(in) {
			t.Fatalf("restored %d envelopes from %d bytes", n, len(in))
		}
		checkRestores(t, fs)
	})
}

// FuzzReadFrame feeds arbitrary bytes to the forwarding RPC's frame reader
// with the default 64 MiB limit: no panic, a frame over the limit is ErrFrameTooLarge,
// and a short stream that announces a large frame allocates about what it
// holds, not what it announces.
func FuzzReadFrame(f *testing.F) {
	const max = 64 << 20
	var ok bytes.Buffer
	if err := writeFrame(&ok, []byte{reqStats}); err != nil {
		f.Fatal(err)
	}
	fuzzcheck.AddBytes(f, [][]byte{
		ok.Bytes(),
		{0, 0, 0, 0},
		{0, 1, 0, 0, 1, 2, 3},       // announces 64 KiB, holds 3 bytes
		{2, 0, 0, 0, 1, 2, 3},       // announces 32 MiB, holds 3 bytes
		{0xff, 0xff, 0xff, 0xff, 1}, // over the limit
		{0, 0},
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		var body []byte
		var err error
		fuzzcheck.Alloc(t, "readFrame", 0, len(in), 4, func() { body, err = readFrame(bytes.NewReader(in), max) })
		if err != nil {
			if len(in) >= 4 && binary.BigEndian.Uint32(in) > max && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("a frame announcing %d bytes over the %d limit: %v", binary.BigEndian.Uint32(in), max, err)
			}
			return
		}
		if len(body) == 0 || len(body) > max || len(body) > len(in)-4 {
			t.Fatalf("readFrame returned %d bytes from %d input bytes", len(body), len(in))
		}
	})
}

// envString describes an envelope without its data ("state/node v1:2 (10
// bytes, storage v1)").
func envString(e *dstate.StoredEnvelope) string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s/%s %s (%d bytes, storage v%d)", e.State, e.Node, e.Generation, len(e.Data), e.StorageVersion)
}
