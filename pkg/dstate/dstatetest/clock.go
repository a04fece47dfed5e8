package dstatetest

import (
	"container/heap"
	"sync"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TestClock is the fake [dstate.Clock] of the engine's tests, the
// simulation and the actor runtimes' tests: its time moves only when
// Advance is called. Its monotonic and wall clocks move together.
//
// It is also a [dstate.TimerClock]: functions scheduled with AfterFunc run
// synchronously inside Advance, on the caller's goroutine, in the order of
// their due times (ties in the order they were scheduled), so one TestClock
// can drive an engine and a runtime's timers and restart backoffs together.
// It is safe for concurrent use.
//
// It does not implement [dstate.WallClock]: the engine asks it for Now and
// UnixMilli separately, as it asks any clock that does not opt in.
type TestClock struct {
	advanceMu sync.Mutex // serialises Advance
	mu        sync.Mutex // guards the fields below
	start     time.Time
	now       time.Time
	seq       uint64
	timers    timerHeap
}

var _ dstate.TimerClock = (*TestClock)(nil)

// DefaultBaseUnixMs is the wall clock a NewTestClock starts at.
const DefaultBaseUnixMs = 1_000_000

// NewTestClock returns a clock at DefaultBaseUnixMs.
func NewTestClock() *TestClock { return NewTestClockAt(DefaultBaseUnixMs) }

// NewTestClockAt returns a clock whose wall clock starts at baseUnixMs.
func NewTestClockAt(baseUnixMs int64) *TestClock {
	return NewTestClockAtTime(time.UnixMilli(baseUnixMs))
}

// NewTestClockAtTime returns a clock that reads start until advanced.
func NewTestClockAtTime(start time.Time) *TestClock {
	return &TestClock{start: start, now: start}
}

// Now returns the current simulated time.
func (c *TestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// UnixMilli returns the simulated wall clock in milliseconds.
func (c *TestClock) UnixMilli() int64 { return c.Now().UnixMilli() }

// Elapsed returns how far the clock was advanced.
func (c *TestClock) Elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now.Sub(c.start)
}

// AfterFunc schedules f to run during the Advance that moves the clock to or
// past Now()+d. A non-positive d makes f due now: it runs during the next
// Advance, even Advance(0). f must not call Advance.
func (c *TestClock) AfterFunc(d time.Duration, f func()) dstate.Stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d < 0 {
		d = 0
	}
	c.seq++
	t := &testTimer{clock: c, when: c.now.Add(d), seq: c.seq, f: f, index: -1}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves the clock forward by d, running every function that falls
// due on the way in time order, with Now reading each function's due time
// while it runs. Functions scheduled by those functions run too if they fall
// due within d. Advance returns once all of them have returned; concurrent
// calls are serialised. A negative d is treated as zero.
func (c *TestClock) Advance(d time.Duration) {
	c.advanceMu.Lock()
	defer c.advanceMu.Unlock()
	if d < 0 {
		d = 0
	}
	c.mu.Lock()
	target := c.now.Add(d)
	for len(c.timers) > 0 && !c.timers[0].when.After(target) {
		t := heap.Pop(&c.timers).(*testTimer)
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
func (c *TestClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// testTimer is one function scheduled on a TestClock.
type testTimer struct {
	clock *TestClock
	when  time.Time
	seq   uint64
	f     func()
	index int // position in the heap, -1 once run or stopped
}

// Stop removes the timer if it is still pending.
func (t *testTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&t.clock.timers, t.index)
	return true
}

// timerHeap orders timers by due time, then by scheduling order.
type timerHeap []*testTimer

func (h timerHeap) Len() int { return len(h) }

func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *timerHeap) Push(x any) {
	t := x.(*testTimer)
	t.index = len(*h)
	*h = append(*h, t)
}

func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}
