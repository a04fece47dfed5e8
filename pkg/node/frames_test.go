package node

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// The arena's frames are EncodeWire's bytes; each stays as it was while
// later frames are carved after it (an append to one cannot reach the
// next), and a frame over frameSlabMax gets its own buffer.
func TestFrameArenaFramesStayIntact(t *testing.T) {
	var a frameArena
	type sent struct {
		frame, want []byte
	}
	var all []sent
	for i := range 2000 {
		m := dstate.WireMessage{Kind: dstate.KindDeltaUpdate, State: "s", Source: "n1",
			Generation: dstate.Generation{Incarnation: 7, Age: uint64(i)}, WireVersion: 1,
			Data: bytes.Repeat([]byte{byte(i)}, i%64)}
		if i%100 == 0 {
			m.Data = []byte(strings.Repeat("x", frameSlabMax+i))
		}
		f := a.encode(&m)
		want := dstate.EncodeWire(&m)
		if !bytes.Equal(f, want) {
			t.Fatalf("frame %d: %x, want %x", i, f, want)
		}
		if cap(f) != len(f) {
			t.Fatalf("frame %d: capacity %d past its length %d: an append would write into the next frame", i, cap(f), len(f))
		}
		all = append(all, sent{f, want})
	}
	for i, s := range all {
		if !bytes.Equal(s.frame, s.want) {
			t.Fatalf("frame %d changed after later frames were carved", i)
		}
	}
	if n := testing.AllocsPerRun(1000, func() {
		m := dstate.WireMessage{Kind: dstate.KindDeltaUpdate, State: "s", Source: "n1", WireVersion: 1, Data: []byte{1, 2, 3}}
		_ = a.encode(&m)
	}); n > 0.1 {
		t.Errorf("%.2f allocations per small frame, want a share of one slab", n)
	}
}
