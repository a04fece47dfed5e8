package dstate

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"
)

// TestViewEntrySizes pins the sizes that set the memory held per view
// entry (BENCHMARKS.md, the scale scenario): a 24-byte sync record, its
// view slot in the 32-byte size class, and a view of an 8-byte value at 72
// bytes (slabs of 4 fill the 288-byte class).
func TestViewEntrySizes(t *testing.T) {
	for _, c := range []struct {
		what      string
		got, want uintptr
	}{
		{"peerState", unsafe.Sizeof(peerState{}), 24},
		{"viewSlot[int64]", unsafe.Sizeof(viewSlot[int64]{}), 32},
		{"StateViewObject[int64]", unsafe.Sizeof(StateViewObject[int64]{}), 72},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %d bytes, want %d", c.what, c.got, c.want)
		}
	}
}

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time   { return c.t }
func (c *fixedClock) UnixMilli() int64 { return c.t.UnixMilli() }

func newInt64Engine(t *testing.T) *Engine[int64, int64] {
	t.Helper()
	e, err := NewEngine(EngineConfig[int64, int64]{
		Name: "c", Node: "n1", State: DefaultStateConfig(), Clock: &fixedClock{t: time.Unix(1_700_000_000, 0)},
		Codec: Codec[int64, int64]{
			Project:    func(s *int64) int64 { return *s },
			EncodeView: func(v int64) ([]byte, error) { return binary.AppendVarint(nil, v), nil },
			DecodeView: func(b []byte, _ uint32) (int64, error) { v, _ := binary.Varint(b); return v, nil },
		},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestPeerSideRecords checks the parts of a peer's sync record kept beside
// it: the gap count beyond 16 bits, the failure count and last error, and
// that a peer that leaves and joins again starts with none of them.
func TestPeerSideRecords(t *testing.T) {
	e := newInt64Engine(t)
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
