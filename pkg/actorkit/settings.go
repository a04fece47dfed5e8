package actorkit

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/dstate-go/dstate/internal/backoff"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Defaults applied to the zero fields of Settings.
const (
	// DefaultMailboxSize is the mailbox bound when Settings.MailboxSize is 0.
	DefaultMailboxSize = 1024
	// DefaultRestartBackoff is the first restart delay when
	// Settings.RestartBackoff is 0.
	DefaultRestartBackoff = 10 * time.Millisecond
	// DefaultMaxRestartBackoff caps the restart delay when
	// Settings.MaxRestartBackoff is 0.
	DefaultMaxRestartBackoff = time.Second
)

// Supervision says what a runtime does with an actor whose handler panics.
type Supervision int

const (
	// RestartOnPanic has the actor go on with the next message of its
	// mailbox after a backoff that doubles with each consecutive panic
	// (Settings.Backoff). It is the zero value.
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

// Settings configure what every runtime built on the kit has in common.
// The zero value is valid: every zero field means its default. A runtime's
// own configuration type may have these fields, in this order and with
// these types, and convert to Settings.
type Settings struct {
	// MailboxSize bounds the messages an actor has accepted but not started
	// on. Zero means DefaultMailboxSize.
	MailboxSize int
	// Supervision chooses between RestartOnPanic (the zero value) and
	// StopOnPanic.
	Supervision Supervision
	// RestartBackoff is the delay before the first restart after a panic,
	// doubled for each consecutive panic; MaxRestartBackoff caps it and
	// must not be below it. Zero means DefaultRestartBackoff and
	// DefaultMaxRestartBackoff.
	RestartBackoff, MaxRestartBackoff time.Duration
	// Clock schedules timers and restart backoffs. Nil means
	// dstate.SystemClock.
	Clock dstate.TimerClock
	// Logger receives the runtime's records. Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultSettings returns Settings with every field set to its default.
func DefaultSettings() Settings {
	return Settings{
		MailboxSize:       DefaultMailboxSize,
		Supervision:       RestartOnPanic,
		RestartBackoff:    DefaultRestartBackoff,
		MaxRestartBackoff: DefaultMaxRestartBackoff,
		Clock:             dstate.SystemClock{},
		Logger:            slog.Default(),
	}
}

// WithDefaults returns a copy of s with its zero fields set to the
// defaults.
func (s Settings) WithDefaults() Settings {
	d := DefaultSettings()
	if s.MailboxSize == 0 {
		s.MailboxSize = d.MailboxSize
	}
	if s.RestartBackoff == 0 {
		s.RestartBackoff = d.RestartBackoff
	}
	if s.MaxRestartBackoff == 0 {
		s.MaxRestartBackoff = d.MaxRestartBackoff
	}
	if s.Clock == nil {
		s.Clock = d.Clock
	}
	if s.Logger == nil {
		s.Logger = d.Logger
	}
	return s
}

// Violation names a setting out of range. A runtime turns it into its own
// error type, which has the same fields.
type Violation struct {
	Field  string // the field, e.g. "MailboxSize"
	Value  any    // the rejected value
	Reason string // what the value must satisfy
}

// Check returns the first setting out of range, or nil. It checks
// MailboxSize, Supervision, RestartBackoff and MaxRestartBackoff, then
// reports the first non-nil of extra (the checks of a runtime's own
// settings), then whether MaxRestartBackoff is below RestartBackoff once
// the defaults are applied.
func (s Settings) Check(extra ...*Violation) *Violation {
	switch {
	case s.MailboxSize < 0:
		return &Violation{Field: "MailboxSize", Value: s.MailboxSize, Reason: "must not be negative"}
	case s.Supervision != RestartOnPanic && s.Supervision != StopOnPanic:
		return &Violation{Field: "Supervision", Value: s.Supervision, Reason: "must be RestartOnPanic or StopOnPanic"}
	case s.RestartBackoff < 0:
		return &Violation{Field: "RestartBackoff", Value: s.RestartBackoff, Reason: "must not be negative"}
	case s.MaxRestartBackoff < 0:
		return &Violation{Field: "MaxRestartBackoff", Value: s.MaxRestartBackoff, Reason: "must not be negative"}
	}
	for _, v := range extra {
		if v != nil {
			return v
		}
	}
	if d := s.WithDefaults(); d.MaxRestartBackoff < d.RestartBackoff {
		return &Violation{Field: "MaxRestartBackoff", Value: d.MaxRestartBackoff,
			Reason: fmt.Sprintf("must not be below RestartBackoff (%v)", d.RestartBackoff)}
	}
	return nil
}

// Backoff returns the restart delay after the n-th consecutive panic
// (n >= 1): RestartBackoff doubled n-1 times, at most MaxRestartBackoff.
// s must have its defaults applied.
func (s Settings) Backoff(n int) time.Duration {
	return backoff.Policy{Min: s.RestartBackoff, Max: s.MaxRestartBackoff}.Delay(n - 1)
}
