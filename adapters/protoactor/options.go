package protoactor

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dstate-go/dstate/pkg/actorkit"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Defaults applied to the zero fields of Options. But for Throughput they
// are those of every runtime built on package actorkit.
const (
	// DefaultMailboxSize is the mailbox bound when Options.MailboxSize is 0.
	DefaultMailboxSize = actorkit.DefaultMailboxSize
	// DefaultRestartBackoff is the first restart delay when
	// Options.RestartBackoff is 0.
	DefaultRestartBackoff = actorkit.DefaultRestartBackoff
	// DefaultMaxRestartBackoff caps the restart delay when
	// Options.MaxRestartBackoff is 0.
	DefaultMaxRestartBackoff = actorkit.DefaultMaxRestartBackoff
	// DefaultThroughput is the number of messages an actor handles before
	// its goroutine yields, when Options.Throughput is 0 (proto.actor's own
	// default).
	DefaultThroughput = 300
)

// Supervision says what happens to an actor whose handler panics. It is
// [actorkit.Supervision], as gosched.Supervision is.
type Supervision = actorkit.Supervision

// The Supervision policies.
const (
	// RestartOnPanic has proto.actor restart the actor after a backoff that
	// doubles with each consecutive panic; the actor then resumes with the
	// next message of its mailbox. It is the zero value.
	RestartOnPanic = actorkit.RestartOnPanic
	// StopOnPanic stops the actor, discarding its queued messages.
	StopOnPanic = actorkit.StopOnPanic
)

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
	// backoffs. Nil means dstate.SystemClock; tests pass a clock they
	// advance themselves (dstatetest.TestClock).
	Clock dstate.TimerClock
	// Logger receives panic and restart records, and, when System is nil,
	// the records of the actor system New creates. Nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns Options with every field but System set to its
// default.
func DefaultOptions() Options {
	o := Options{Throughput: DefaultThroughput}
	o.setSettings(actorkit.DefaultSettings())
	return o
}

// Validate reports the first field that is out of range as an
// *OptionsError wrapping ErrInvalidOptions. It does not change o.
func (o Options) Validate() error {
	var throughput *actorkit.Violation
	if o.Throughput < 0 {
		throughput = &actorkit.Violation{Field: "Throughput", Value: o.Throughput, Reason: "must not be negative"}
	}
	if v := o.settings().Check(throughput); v != nil {
		return (*OptionsError)(v)
	}
	return nil
}

// settings returns the fields of o that every actorkit runtime has.
func (o Options) settings() actorkit.Settings {
	return actorkit.Settings{MailboxSize: o.MailboxSize, Supervision: o.Supervision,
		RestartBackoff: o.RestartBackoff, MaxRestartBackoff: o.MaxRestartBackoff, Clock: o.Clock, Logger: o.Logger}
}

// setSettings sets the fields of o that every actorkit runtime has.
func (o *Options) setSettings(s actorkit.Settings) {
	o.MailboxSize, o.Supervision = s.MailboxSize, s.Supervision
	o.RestartBackoff, o.MaxRestartBackoff = s.RestartBackoff, s.MaxRestartBackoff
	o.Clock, o.Logger = s.Clock, s.Logger
}

// OptionsError reports an Options field that Validate rejected: the Field
// (e.g. "MailboxSize"), the rejected Value and the Reason, what the value
// must satisfy.
type OptionsError actorkit.Violation

// Error implements error.
func (e *OptionsError) Error() string {
	return fmt.Sprintf("%v: %s = %v: %s", ErrInvalidOptions, e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidOptions.
func (e *OptionsError) Unwrap() error { return ErrInvalidOptions }
