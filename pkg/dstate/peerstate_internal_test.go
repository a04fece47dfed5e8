package dstate

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"
)

// TestViewEntrySizes pins the sizes that set the memory held per view
// entry (BENCHMARKS.md, the scale scenario): an 8-byte sync record, its
// view slot in the 16-byte size class, and a view of an 8-byte value at 72
// bytes (slabs of 4 fill the 256-byte class).
func TestViewEntrySizes(t *testing.T) {
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		{"peerState", unsafe.Sizeof(peerState{}), 8},
		{"viewSlot[int64]", unsafe.Sizeof(viewSlot[int64]{}), 16},
		{"StateViewObject[int64]", unsafe.Sizeof(StateViewObject[int64]{}), 64},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %d bytes, want %d", c.what, c.got, c.want)
		}
	}
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time   { return c.t }
func (c *fixedClock) UnixMilli() int64 { return c.t.UnixMilli() }

func newInt64Engine(t *testing.T) (*Engine[int64, int64], *fixedClock) {
	t.Helper()
	clock := &fixedClock{t: time.Unix(1_700_000_000, 0)}
	e, err := NewEngine(EngineConfig[int64, int64]{
		Name: "c", Node: "n1", State: DefaultStateConfig(), Clock: clock,
		Codec: Codec[int64, int64]{
			Project:    func(s *int64) int64 { return *s },
			EncodeView: func(v int64) ([]byte, error) { return binary.AppendVarint(nil, v), nil },
			DecodeView: func(b []byte, _ uint32) (int64, error) { v, _ := binary.Varint(b); return v, nil },
		},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return e, clock
}

// TestPeerSideRecords checks the parts of a peer's sync record kept beside
// it: the gap count beyond 16 bits, the failure count and last error, and
// that a peer that leaves and joins again starts with none of them.
func TestPeerSideRecords(t *testing.T) {
	e, _ := newInt64Engine(t)
	e.OnNodeJoined("n2")
	const gaps = 3*65536 + 5
	for range gaps {
		e.gap("n2", e.peer("n2"))
	}
	e.failure("n2", "first")
	e.failure("n2", "second")
	st := e.PeerStatuses()
	if len(st) != 1 {
		t.Fatalf("got %d statuses, want 1", len(st))
	}
	if st[0].Gaps != gaps || st[0].ConsecutiveFailures != 2 || st[0].LastError != "second" {
		t.Errorf("got gaps %d, failures %d, error %q; want %d, 2, %q", st[0].Gaps, st[0].ConsecutiveFailures, st[0].LastError, gaps, "second")
	}
	e.OnNodeLeft("n2")
	e.ForgetDeparted("n2")
	e.OnNodeJoined("n2")
	st = e.PeerStatuses()
	if len(st) != 1 || st[0].Gaps != 0 || st[0].ConsecutiveFailures != 0 || st[0].LastError != "" {
		t.Errorf("after leaving and joining again: got %+v, want no gaps or failures", st)
	}
	if len(e.peerErrs)+len(e.pulls)+len(e.gapsOver) != 0 {
		t.Errorf("side maps hold %d, %d, %d entries after the peer left, want none", len(e.peerErrs), len(e.pulls), len(e.gapsOver))
	}
}

// TestLastSyncKept checks PeerStatus.LastSync through the states of a
// record whose time is its view's: none yet, accepted into the view, the
// view dropped (DropAndWait), a placeholder in its place, and a new update.
func TestLastSyncKept(t *testing.T) {
	e, clock := newInt64Engine(t)
	lastSync := func(what string, want time.Time) {
		t.Helper()
		for _, st := range e.PeerStatuses() {
			if st.Node == "n2" {
				if !st.LastSync.Equal(want) {
					t.Errorf("%s: LastSync %s, want %s", what, st.LastSync, want)
				}
				return
			}
		}
		t.Errorf("%s: no status of n2", what)
	}
	snapshot := func(age uint64) {
		e.HandleWire(&WireMessage{Kind: KindFullSnapshot, State: "c", Source: "n2", Generation: Generation{Incarnation: 5, Age: age},
			Data: binary.AppendVarint(nil, int64(age))})
	}
	e.OnNodeJoined("n2")
	lastSync("joined", time.Time{})
	clock.t = clock.t.Add(time.Second)
	t1 := clock.t
	snapshot(1)
	lastSync("accepted", t1)
	clock.t = clock.t.Add(time.Second)
	e.failure("n2", "version mismatch") // listed while it has no view
	e.dropView("n2")
	lastSync("view dropped", t1)
	clock.t = clock.t.Add(time.Second)
	e.OnNodeJoined("n2") // a placeholder of the current time
	e.peer("n2")         // the record moves into its slot
	lastSync("placeholder", t1)
	clock.t = clock.t.Add(time.Second)
	t4 := clock.t
	snapshot(2)
	lastSync("accepted again", t4)
	if len(e.syncAside) != 0 {
		t.Errorf("syncAside holds %d entries, want none", len(e.syncAside))
	}
}

// TestLastAttempt checks PeerStatus.LastAttempt, the time of the last
// accepted update unless a later message was not applied.
func TestLastAttempt(t *testing.T) {
	e, clock := newInt64Engine(t)
	check := func(what string, attempt, sync time.Time) {
		t.Helper()
		for _, st := range e.PeerStatuses() {
			if st.Node == "n2" {
				if !st.LastAttempt.Equal(attempt) || !st.LastSync.Equal(sync) {
					t.Errorf("%s: LastAttempt %s, LastSync %s; want %s, %s", what, st.LastAttempt, st.LastSync, attempt, sync)
				}
				return
			}
		}
		t.Errorf("%s: no status of n2", what)
	}
	send := func(kind MessageKind, age uint64) time.Time {
		clock.t = clock.t.Add(time.Second)
		e.HandleWire(&WireMessage{Kind: kind, State: "c", Source: "n2", Generation: Generation{Incarnation: 5, Age: age},
			Data: binary.AppendVarint(nil, int64(age))})
		return clock.t
	}
	e.OnNodeJoined("n2")
	check("joined", time.Time{}, time.Time{})
	t1 := send(KindFullSnapshot, 3)
	check("accepted", t1, t1)
	t2 := send(KindFullSnapshot, 2) // older: discarded
	check("discarded", t2, t1)
	t3 := send(KindFullSnapshot, 4)
	check("accepted again", t3, t3)
	t4 := send(KindDeltaUpdate, 9) // a gap: not applied (no deltas here anyway)
	check("not applied", t4, t3)
	if len(e.attempts) != 1 {
		t.Errorf("attempts holds %d entries, want 1", len(e.attempts))
	}
	t5 := send(KindFullSnapshot, 4) // confirms the generation held
	check("confirmed", t5, t5)
	if len(e.attempts) != 0 {
		t.Errorf("attempts holds %d entries after an accepted update, want none", len(e.attempts))
	}
	send(KindFullSnapshot, 1)
	e.OnNodeLeft("n2")
	if len(e.attempts)+len(e.syncAside) != 0 {
		t.Errorf("attempts and syncAside hold %d, %d entries after the peer left, want none", len(e.attempts), len(e.syncAside))
	}
}
