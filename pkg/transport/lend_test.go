package transport

import (
	"fmt"
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
