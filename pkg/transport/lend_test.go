package transport

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

var _ dstate.FrameLender = (*Transport)(nil)

// lent is one frame delivered by StartLending: its bytes when delivered,
// the address of its first byte, and the frame itself.
type lent struct {
	text  string
	addr  uintptr
	frame []byte
}

// A frame the receiver does not keep is read into again; a kept frame is
// never written to again, whatever follows it.
func TestStartLendingReusesOnlyFramesNotKept(t *testing.T) {
	a := startNode(t, "a", nil)
	b := newNode(t, "b", nil)
	got := make(chan lent, 64)
	require.NoError(t, b.StartLending(func(from dstate.NodeID, frame []byte) bool {
		got <- lent{text: string(frame), addr: uintptr(unsafe.Pointer(unsafe.SliceData(frame))), frame: frame}
		return frame[0] == 'k' // frames starting with k are kept
	}))
	a.SetPeer("b", b.Addr())

	next := func() lent {
		t.Helper()
		select {
		case l := <-got:
			return l
		case <-t.Context().Done():
			t.Fatal("test ended")
		}
		return lent{}
	}
	send := func(s string) lent {
		t.Helper()
		require.NoError(t, a.Send("b", []byte(s)))
		return next()
	}
	first := send("lent-1 xxxxxxxx")
	second := send("lent-2 xx") // fits the frame given back
	require.Equal(t, "lent-2 xx", second.text)
	require.Equal(t, first.addr, second.addr, "a frame not kept was not read into again")

	kept := send("kept-1 yyyyyy")
	require.Equal(t, second.addr, kept.addr, "the spare frame was not used")
	for i := range 5 {
		l := send(fmt.Sprintf("lent-%d zzzzzzzzzzz", i+3))
		require.NotEqual(t, kept.addr, l.addr, "a kept frame was read into")
	}
	require.Equal(t, "kept-1 yyyyyy", string(kept.frame), "a kept frame changed after it was delivered")

	big := send(string(make([]byte, 200)))
	require.Len(t, big.text, 200, "a frame larger than the spare one")

	// A kept frame given back with ReturnFrame is read into again once the
	// connection has no spare frame of its own.
	kept2 := send("kept-2 wwwwwwwwwwwwwwww") // the spare is used and kept: none left
	b.ReturnFrame(kept2.frame)
	again := send("lent-after-return")
	require.Equal(t, kept2.addr, again.addr, "a returned frame was not read into again")
	require.Equal(t, "lent-after-return", again.text)
}

var _ dstate.BatchLender = (*Transport)(nil)

// batchSeen is one batch StartLendingBatches delivered: the frames' bytes
// when delivered, the frames the receiver kept, and where the others were.
type batchSeen struct {
	texts []string
	kept  [][]byte
	lent  []uintptr // the first byte of each frame not kept
	fresh bool      // every kept flag was false on entry
}

// Frames that arrived while the receiver was busy come in one batch, in
// order; kept frames are never written to again, and the others are read
// into again, all of them, by the next burst.
func TestStartLendingBatchesDeliversWhatArrivedTogether(t *testing.T) {
	a := startNode(t, "a", nil)
	b := newNode(t, "b", nil)
	release := make(chan struct{})
	got := make(chan batchSeen, 256)
	require.NoError(t, b.StartLendingBatches(func(from dstate.NodeID, frames [][]byte, kept []bool) {
		s := batchSeen{fresh: len(kept) == len(frames)}
		for i, f := range frames {
			s.fresh = s.fresh && !kept[i]
			s.texts = append(s.texts, string(f))
			if f[0] == 'k' {
				kept[i] = true
				s.kept = append(s.kept, f)
			} else {
				s.lent = append(s.lent, uintptr(unsafe.Pointer(unsafe.SliceData(f))))
			}
		}
		got <- s
		if strings.HasPrefix(s.texts[len(s.texts)-1], "hold") {
			<-release // the frames sent meanwhile pile up in the read buffer
		}
	}))
	a.SetPeer("b", b.Addr())
	next := func() batchSeen {
		t.Helper()
		select {
		case s := <-got:
			require.True(t, s.fresh, "kept flags not all false on entry")
			return s
		case <-t.Context().Done():
			t.Fatal("test ended")
		}
		return batchSeen{}
	}
	sent := 0
	// burst holds the receiver, sends frames while it waits, lets it go
	// and returns the batches that follow the hold.
	burst := func(texts []string) []batchSeen {
		t.Helper()
		require.NoError(t, a.Send("b", []byte("hold")))
		sent++
		require.Equal(t, []string{"hold"}, next().texts)
		for _, s := range texts {
			require.NoError(t, a.Send("b", []byte(s)))
		}
		sent += len(texts)
		require.Eventually(t, func() bool { return a.Stats().FramesOut == uint64(sent) }, waitTimeout, pollEvery)
		release <- struct{}{}
		var out []batchSeen
		for n := 0; n < len(texts); {
			s := next()
			out = append(out, s)
			n += len(s.texts)
		}
		return out
	}

	var want, keptWant []string
	for i := range 60 {
		kind := "lent"
		if i%7 == 0 {
			kind = "kept"
		}
		want = append(want, fmt.Sprintf("%s-%02d %s", kind, i, "xxxxxxxxxxxxxxxxxxxxxxxx"[:i%24]))
		if kind == "kept" {
			keptWant = append(keptWant, want[i])
		}
	}
	var texts []string
	var kept [][]byte
	lentAt := map[uintptr]bool{}
	largest := 0
	for _, s := range burst(want) {
		texts = append(texts, s.texts...)
		kept = append(kept, s.kept...)
		inBatch := map[uintptr]bool{}
		for _, p := range s.lent {
			require.False(t, inBatch[p], "two frames of one batch share storage")
			inBatch[p], lentAt[p] = true, true
		}
		largest = max(largest, len(s.texts))
	}
	require.Equal(t, want, texts, "frames out of order or lost")
	require.Greater(t, largest, 1, "no batch held more than one frame")

	// A second burst is read into the frames the first gave back.
	var again []string
	for i := range 40 {
		again = append(again, fmt.Sprintf("again-%02d", i))
	}
	texts = nil
	for _, s := range burst(again) {
		texts = append(texts, s.texts...)
		for _, p := range s.lent {
			require.True(t, lentAt[p], "a frame was allocated while frames given back were spare")
		}
	}
	require.Equal(t, again, texts)

	require.Len(t, kept, len(keptWant))
	for i, k := range kept {
		require.Equal(t, keptWant[i], string(k), "a kept frame was written to after it was delivered")
	}
	require.Equal(t, uint64(sent), b.Stats().FramesIn)
}
