package dstate

import "time"

// Clock is the engine's only source of time. The engine calls it from its
// owning goroutine; implementations must be safe for concurrent use and must
// not block.
type Clock interface {
	// Now returns the monotonic time used for freshness (SyncedAt).
	Now() time.Time
	// UnixMilli returns wall-clock milliseconds, used for incarnations and
	// created/modified timestamps.
	UnixMilli() int64
}

// SystemClock is the process's real clock. It is the one place in this
// package that reads the time; everything else receives a Clock.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now returns time.Now (with its monotonic reading).
func (SystemClock) Now() time.Time { return time.Now() }

// UnixMilli returns the wall clock in milliseconds.
func (SystemClock) UnixMilli() int64 { return time.Now().UnixMilli() }
