package bench

import (
	"sync/atomic"
	"time"
)

// room is the throughput writer's window: each observer reports the newest
// sequence number it applied, and the writer, once its window is full,
// waits until the observers have made room, woken by the observer that
// made it (a timed poll would add its timer's slack to every wait).
type room struct {
	seen []paddedSeq
	// want is the sequence number every observer must reach for the
	// waiting writer to go on; 0 when nobody waits.
	want atomic.Uint64
	wake chan struct{} // capacity 1: the observer that met want
}

// paddedSeq keeps each observer's counter on its own cache line.
type paddedSeq struct {
	v atomic.Uint64
	_ [56]byte
}

func newRoom(observers int) *room {
	return &room{seen: make([]paddedSeq, observers), wake: make(chan struct{}, 1)}
}

// applied records that observer i holds the view up to seq, and wakes the
// writer if that was what it waited for.
func (r *room) applied(i int, seq uint64) {
	if r == nil {
		return
	}
	s := &r.seen[i].v
	if seq <= s.Load() {
		return
	}
	s.Store(seq)
	if w := r.want.Load(); w != 0 && seq >= w && r.min() >= w && r.want.CompareAndSwap(w, 0) {
		r.wake <- struct{}{}
	}
}

// min returns the newest sequence number every observer holds.
func (r *room) min() uint64 {
	m := ^uint64(0)
	for i := range r.seen {
		m = min(m, r.seen[i].v.Load())
	}
	return m
}

// waitFor waits until every observer holds seq w, stop is closed, or a
// millisecond has passed (a backstop: a view replaced by a snapshot that
// was then discarded reports nothing), and returns the newest sequence
// number every observer holds.
func (r *room) waitFor(w uint64, stop <-chan struct{}, t *time.Timer) uint64 {
	r.want.Store(w)
	if r.min() < w {
		t.Reset(time.Millisecond)
		select {
		case <-r.wake:
			t.Stop()
			return r.min()
		case <-stop:
		case <-t.C:
		}
	}
	if !r.want.CompareAndSwap(w, 0) {
		<-r.wake // an observer met want and is handing over
	}
	return r.min()
}
