package gosched

import (
	"container/heap"
	"sync"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// FakeClock is a Clock whose time moves only when Advance is called, for
// deterministic tests. Scheduled functions run synchronously inside Advance,
// on the caller's goroutine, in the order of their due times (ties in the
// order they were scheduled). It is safe for concurrent use; it also
// satisfies dstate.Clock, so one FakeClock can drive an engine and the
// runtime together.
type FakeClock struct {
	advanceMu sync.Mutex // serialises Advance
	mu        sync.Mutex // guards the fields below
	now       time.Time
	seq       uint64
	timers    fakeTimerHeap
}

var (
	_ Clock        = (*FakeClock)(nil)
	_ dstate.Clock = (*FakeClock)(nil)
)

// NewFakeClock returns a FakeClock that reads start until advanced.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start}
}

// Now returns the clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// UnixMilli returns Now in Unix milliseconds.
func (c *FakeClock) UnixMilli() int64 { return c.Now().UnixMilli() }

// AfterFunc schedules f to run during the Advance that moves the clock to or
// past Now()+d. A non-positive d makes f due now: it runs during the next
// Advance, even Advance(0). f must not call Advance.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d < 0 {
		d = 0
	}
	c.seq++
	t := &fakeTimer{clock: c, when: c.now.Add(d), seq: c.seq, f: f, index: -1}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves the clock forward by d, running every function that falls
// due on the way in time order, with Now reading each function's due time
// while it runs. Functions scheduled by those functions run too if they fall
// due within d. Advance returns once all of them have returned; concurrent
// calls are serialised. A negative d is treated as zero.
func (c *FakeClock) Advance(d time.Duration) {
	c.advanceMu.Lock()
	defer c.advanceMu.Unlock()
	if d < 0 {
		d = 0
	}
	c.mu.Lock()
	target := c.now.Add(d)
	for len(c.timers) > 0 && !c.timers[0].when.After(target) {
		t := heap.Pop(&c.timers).(*fakeTimer)
		if t.when.After(c.now) {
			c.now = t.when
		}
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = target
	c.mu.Unlock()
}

// Pending returns the number of scheduled functions that have neither run
// nor been stopped.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// fakeTimer is one function scheduled on a FakeClock.
type fakeTimer struct {
	clock *FakeClock
	when  time.Time
	seq   uint64
	f     func()
	index int // position in the heap, -1 once run or stopped
}

// Stop removes the timer if it is still pending.
func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.clock.timers, t.index)
	return true
}

// fakeTimerHeap orders timers by due time, then by scheduling order.
type fakeTimerHeap []*fakeTimer

func (h fakeTimerHeap) Len() int { return len(h) }

func (h fakeTimerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}

func (h fakeTimerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *fakeTimerHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *fakeTimerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
