package dstate

import "time"

// Clock is the one source of time of the engine, the host and the actor
// runtimes. The engine calls it from its owning goroutine; implementations
// must be safe for concurrent use and must not block.
//
// [SystemClock] is the process's clock; dstatetest.TestClock is a clock
// that moves only when a test advances it. A runtime that schedules timers
// needs a [TimerClock]; a clock whose Now carries its wall clock may say so
// with [WallClock].
type Clock interface {
	// Now returns the monotonic time used for freshness (Views.SyncedAt).
	Now() time.Time
	// UnixMilli returns wall-clock milliseconds, used for incarnations and
	// created/modified timestamps.
	UnixMilli() int64
}

// TimerClock is a [Clock] that also schedules functions: what an actor
// runtime needs for SendAfter and SendInterval timers and restart
// backoffs. A runtime calls AfterFunc from any goroutine, including from
// inside a function f passed to an earlier AfterFunc.
type TimerClock interface {
	Clock
	// AfterFunc calls f once, on a goroutine of the clock's choosing, after
	// d has elapsed; a non-positive d means as soon as possible. The
	// returned Stopper cancels the call.
	AfterFunc(d time.Duration, f func()) Stopper
}

// Stopper cancels a function scheduled by [TimerClock.AfterFunc].
type Stopper interface {
	// Stop prevents the call if it has not started and reports whether it
	// did so; it returns false if the call has started or was stopped. It
	// does not wait for a started call to finish.
	Stop() bool
}

// WallClock is an optional interface of a [Clock]. A clock whose
// NowCarriesWall reports true promises that Now().UnixMilli() is what
// UnixMilli returns at that instant; the engine then reads the clock once
// where it needs both (each read of the real clock costs tens of
// nanoseconds on the mutate path). Clocks without it, or reporting false,
// are asked for Now and UnixMilli separately.
type WallClock interface {
	Clock
	// NowCarriesWall reports whether Now carries the wall clock.
	NowCarriesWall() bool
}

// SystemClock is the process's real clock. It is the one place in this
// package that reads the time; everything else receives a Clock.
type SystemClock struct{}

var (
	_ TimerClock = SystemClock{}
	_ WallClock  = SystemClock{}
)

// Now returns time.Now (with its monotonic reading).
func (SystemClock) Now() time.Time { return time.Now() }

// UnixMilli returns the wall clock in milliseconds.
func (SystemClock) UnixMilli() int64 { return time.Now().UnixMilli() }

// AfterFunc calls time.AfterFunc, which runs f on its own goroutine.
func (SystemClock) AfterFunc(d time.Duration, f func()) Stopper { return time.AfterFunc(d, f) }

// since returns the time elapsed since t, a reading of Now, from the
// monotonic clock alone (one call into the kernel's clock page where Now
// makes two).
func (SystemClock) since(t time.Time) time.Duration { return time.Since(t) }

// NowCarriesWall reports true: time.Now carries the wall clock.
func (SystemClock) NowCarriesWall() bool { return true }

// carriesWall reports whether c promises that its Now carries its wall
// clock ([WallClock]).
func carriesWall(c Clock) bool {
	w, ok := c.(WallClock)
	return ok && w.NowCarriesWall()
}
