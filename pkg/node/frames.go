package node

import "github.com/dstate-go/dstate/pkg/dstate"

// Frames a state's actor sends are carved out of shared slabs: a small
// frame (a delta, a notice) costs no allocation of its own. A slab is never
// written again where it was handed out, and the collector frees it once no
// queued frame refers to it, so a peer whose queue holds frames keeps at
// most the slabs those frames lie in.
const (
	frameSlab    = 8 << 10 // bytes of one slab
	frameSlabMax = 512     // larger frames get their own allocation
)

// frameArena is the slab a state's actor is carving frames out of. Only
// the actor uses it.
type frameArena struct{ slab []byte }

// encode returns m's encoding (dstate.EncodeWire's bytes), capped so that
// nothing appended to it can reach the next frame.
func (a *frameArena) encode(m *dstate.WireMessage) []byte {
	n := dstate.EncodedSize(m)
	if n > frameSlabMax {
		return dstate.AppendWire(make([]byte, 0, n), m)
	}
	if cap(a.slab)-len(a.slab) < n {
		a.slab = make([]byte, 0, frameSlab)
	}
	start := len(a.slab)
	a.slab = dstate.AppendWire(a.slab, m)
	return a.slab[start:len(a.slab):len(a.slab)]
}

// EncodeFrame is dstate.FrameEncoder: the shard's frames come from its
// arena. It runs on the state's actor.
func (h *shardActions[S, V]) EncodeFrame(m *dstate.WireMessage) []byte { return h.frames.encode(m) }
