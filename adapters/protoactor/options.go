package protoactor

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dstate-go/dstate/pkg/gosched"
)

// Defaults applied to the zero fields of Options.
const (
	// DefaultMailboxSize is the mailbox bound when Options.MailboxSize is 0.
	DefaultMailboxSize = 1024
	// DefaultRestartBackoff is the first restart delay when
	// Options.RestartBackoff is 0.
	DefaultRestartBackoff = 10 * time.Millisecond
	// DefaultMaxRestartBackoff caps the restart delay when
	// Options.MaxRestartBackoff is 0.
	DefaultMaxRestartBackoff = time.Second
	// DefaultThroughput is the number of messages an actor handles before
	// its goroutine yields, when Options.Throughput is 0 (proto.actor's own
	// default).
	DefaultThroughput = 300
)

// Supervision says what happens to an actor whose handler panics.
type Supervision int

const (
	// RestartOnPanic has proto.actor restart the actor after a backoff that
	// doubles with each consecutive panic; the actor then resumes with the
	// next message of its mailbox. It is the zero value.
	RestartOnPanic Supervision = iota
	// StopOnPanic stops the actor, discarding its queued messages.
	StopOnPanic
)

// String returns the constant's name.
func (s Supervision) String() string {
	switch s {
	case RestartOnPanic:
		return "RestartOnPanic"
	case StopOnPanic:
		return "StopOnPanic"
	}
	return fmt.Sprintf("Supervision(%d)", int(s))
}

// Options configure a Runtime. The zero value is valid: every zero field
// means its default.
type Options struct {
	// System is the proto.actor actor system the actors are spawned in.
	// Nil means New creates a system of its own (logging to Logger), which
	// Close shuts down; a system passed in here is left running by Close.
	System *actor.ActorSystem
	// MailboxSize bounds the messages an actor has accepted through
	// [Actor.Send] (or a timer or a group broadcast) but not started on.
	// Zero means DefaultMailboxSize.
	MailboxSize int
	// Supervision chooses between RestartOnPanic (the zero value) and
	// StopOnPanic.
	Supervision Supervision
	// RestartBackoff is the delay before the first restart after a panic;
	// each consecutive panic doubles it. Zero means DefaultRestartBackoff.
	RestartBackoff time.Duration
	// MaxRestartBackoff caps the restart delay. Zero means
	// DefaultMaxRestartBackoff. It must not be below RestartBackoff.
	MaxRestartBackoff time.Duration
	// Throughput is how many messages an actor handles in a row before its
	// goroutine yields to others (proto.actor's dispatcher throughput).
	// Zero means DefaultThroughput.
	Throughput int
	// Clock schedules SendAfter and SendInterval timers and restart
	// backoffs. Nil means gosched.RealClock; tests pass a
	// *gosched.FakeClock and move time with its Advance.
	Clock gosched.Clock
	// Logger receives panic and restart records, and, when System is nil,
	// the records of the actor system New creates. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns Options with every field but System set to its
// default.
func DefaultOptions() Options {
	return Options{
		MailboxSize:       DefaultMailboxSize,
		Supervision:       RestartOnPanic,
		RestartBackoff:    DefaultRestartBackoff,
		MaxRestartBackoff: DefaultMaxRestartBackoff,
		Throughput:        DefaultThroughput,
		Clock:             gosched.RealClock{},
		Logger:            slog.Default(),
	}
}

// Validate reports the first field that is out of range as an
// *OptionsError wrapping ErrInvalidOptions. It does not change o.
func (o Options) Validate() error {
	switch {
	case o.MailboxSize < 0:
		return &OptionsError{Field: "MailboxSize", Value: o.MailboxSize, Reason: "must not be negative"}
	case o.Supervision != RestartOnPanic && o.Supervision != StopOnPanic:
		return &OptionsError{Field: "Supervision", Value: o.Supervision, Reason: "must be RestartOnPanic or StopOnPanic"}
	case o.RestartBackoff < 0:
		return &OptionsError{Field: "RestartBackoff", Value: o.RestartBackoff, Reason: "must not be negative"}
	case o.MaxRestartBackoff < 0:
		return &OptionsError{Field: "MaxRestartBackoff", Value: o.MaxRestartBackoff, Reason: "must not be negative"}
	case o.Throughput < 0:
		return &OptionsError{Field: "Throughput", Value: o.Throughput, Reason: "must not be negative"}
	}
	if d := o.withDefaults(); d.MaxRestartBackoff < d.RestartBackoff {
		return &OptionsError{Field: "MaxRestartBackoff", Value: d.MaxRestartBackoff,
			Reason: fmt.Sprintf("must not be below RestartBackoff (%v)", d.RestartBackoff)}
	}
	return nil
}

// withDefaults returns a copy of o with its zero fields (but System) set
// to the defaults.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.MailboxSize == 0 {
		o.MailboxSize = d.MailboxSize
	}
	if o.RestartBackoff == 0 {
		o.RestartBackoff = d.RestartBackoff
	}
	if o.MaxRestartBackoff == 0 {
		o.MaxRestartBackoff = d.MaxRestartBackoff
	}
	if o.Throughput == 0 {
		o.Throughput = d.Throughput
	}
	if o.Clock == nil {
		o.Clock = d.Clock
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	return o
}
