package actorkit

import (
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Clock is a runtime's source of time: it schedules SendAfter and
// SendInterval timers and restart backoffs. Implementations are safe for
// concurrent use and never block. The kit calls AfterFunc from any
// goroutine, including from inside a function f passed to an earlier
// AfterFunc.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f once, on a goroutine of the clock's choosing, after
	// d has elapsed; a non-positive d means as soon as possible. The
	// returned Stopper cancels the call.
	AfterFunc(d time.Duration, f func()) Stopper
}

// Stopper cancels a function scheduled by Clock.AfterFunc.
type Stopper interface {
	// Stop prevents the call if it has not started and reports whether it
	// did so; it returns false if the call has started or was stopped. It
	// does not wait for a started call to finish.
	Stop() bool
}

// RealClock is the process's clock, backed by time.Now and time.AfterFunc.
// It also satisfies dstate.Clock.
type RealClock struct{}

var (
	_ Clock        = RealClock{}
	_ dstate.Clock = RealClock{}
)

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// UnixMilli returns the wall clock in milliseconds.
func (RealClock) UnixMilli() int64 { return time.Now().UnixMilli() }

// AfterFunc calls time.AfterFunc, which runs f on its own goroutine.
func (RealClock) AfterFunc(d time.Duration, f func()) Stopper { return time.AfterFunc(d, f) }
