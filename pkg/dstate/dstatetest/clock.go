package dstatetest

import (
	"sync"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TestClock is a manually advanced dstate.Clock. Its monotonic and wall
// clocks move together, only when Advance is called. Safe for concurrent use.
type TestClock struct {
	mu      sync.Mutex
	base    time.Time
	elapsed time.Duration
}

var _ dstate.Clock = (*TestClock)(nil)

// DefaultBaseUnixMs is the wall clock a NewTestClock starts at.
const DefaultBaseUnixMs = 1_000_000

// NewTestClock returns a clock at DefaultBaseUnixMs.
func NewTestClock() *TestClock { return NewTestClockAt(DefaultBaseUnixMs) }

// NewTestClockAt returns a clock whose wall clock starts at baseUnixMs.
func NewTestClockAt(baseUnixMs int64) *TestClock {
	return &TestClock{base: time.UnixMilli(baseUnixMs)}
}

// Now returns the current simulated time.
func (c *TestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(c.elapsed)
}

// UnixMilli returns the simulated wall clock in milliseconds.
func (c *TestClock) UnixMilli() int64 { return c.Now().UnixMilli() }

// Advance moves both clocks forward by d.
func (c *TestClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.elapsed += d
	c.mu.Unlock()
}

// Elapsed returns how far the clock was advanced.
func (c *TestClock) Elapsed() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.elapsed
}
