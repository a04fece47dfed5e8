package gosched

import (
	"github.com/dstate-go/dstate/pkg/actorkit"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Clock is the runtime's source of time: it schedules SendAfter and
// SendInterval timers and restart backoffs. Implementations are safe for
// concurrent use and never block. The runtime calls AfterFunc from any
// goroutine, including from inside a function f passed to an earlier
// AfterFunc. It is [actorkit.Clock], shared with every runtime built on
// package actorkit.
type Clock = actorkit.Clock

// Stopper cancels a function scheduled by Clock.AfterFunc; it is
// [actorkit.Stopper].
type Stopper = actorkit.Stopper

// RealClock is the process's clock, backed by time.Now and time.AfterFunc;
// it is [actorkit.RealClock]. It also satisfies dstate.Clock.
type RealClock = actorkit.RealClock

var (
	_ Clock        = RealClock{}
	_ dstate.Clock = RealClock{}
)
