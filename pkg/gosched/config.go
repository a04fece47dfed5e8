package gosched

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults applied to the zero fields of a Config.
const (
	// DefaultMailboxSize is the mailbox capacity when Config.MailboxSize is 0.
	DefaultMailboxSize = 1024
	// DefaultRestartBackoff is the first restart delay when
	// Config.RestartBackoff is 0.
	DefaultRestartBackoff = 10 * time.Millisecond
	// DefaultMaxRestartBackoff caps the restart delay when
	// Config.MaxRestartBackoff is 0.
	DefaultMaxRestartBackoff = time.Second
)

// Supervision says what happens to an actor whose handler panics.
type Supervision int

const (
	// RestartOnPanic resumes the actor with its next queued message after a
	// backoff that doubles with each consecutive panic. It is the zero value.
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

// Config configures a Runtime. The zero value is valid: every zero field
// means its default.
type Config struct {
	// MailboxSize bounds the messages an actor has accepted but not started
	// on. Zero means DefaultMailboxSize.
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
	// Clock schedules timers and restart backoffs. Nil means RealClock.
	Clock Clock
	// Logger receives panic and restart records. Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every field set to its default.
func DefaultConfig() Config {
	return Config{
		MailboxSize:       DefaultMailboxSize,
		Supervision:       RestartOnPanic,
		RestartBackoff:    DefaultRestartBackoff,
		MaxRestartBackoff: DefaultMaxRestartBackoff,
		Clock:             RealClock{},
		Logger:            slog.Default(),
	}
}

// Validate reports the first field that is out of range as a *ConfigError
// wrapping ErrInvalidConfig. It does not change c.
func (c Config) Validate() error {
	switch {
	case c.MailboxSize < 0:
		return &ConfigError{Field: "MailboxSize", Value: c.MailboxSize, Reason: "must not be negative"}
	case c.Supervision != RestartOnPanic && c.Supervision != StopOnPanic:
		return &ConfigError{Field: "Supervision", Value: c.Supervision, Reason: "must be RestartOnPanic or StopOnPanic"}
	case c.RestartBackoff < 0:
		return &ConfigError{Field: "RestartBackoff", Value: c.RestartBackoff, Reason: "must not be negative"}
	case c.MaxRestartBackoff < 0:
		return &ConfigError{Field: "MaxRestartBackoff", Value: c.MaxRestartBackoff, Reason: "must not be negative"}
	}
	if d := c.withDefaults(); d.MaxRestartBackoff < d.RestartBackoff {
		return &ConfigError{Field: "MaxRestartBackoff", Value: d.MaxRestartBackoff,
			Reason: fmt.Sprintf("must not be below RestartBackoff (%v)", d.RestartBackoff)}
	}
	return nil
}

// withDefaults returns a copy of c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MailboxSize == 0 {
		c.MailboxSize = d.MailboxSize
	}
	if c.RestartBackoff == 0 {
		c.RestartBackoff = d.RestartBackoff
	}
	if c.MaxRestartBackoff == 0 {
		c.MaxRestartBackoff = d.MaxRestartBackoff
	}
	if c.Clock == nil {
		c.Clock = d.Clock
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}
