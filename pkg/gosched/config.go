package gosched

import (
	"log/slog"
	"time"

	"github.com/dstate-go/dstate/pkg/actorkit"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Defaults applied to the zero fields of a Config; they are actorkit's.
const (
	// DefaultMailboxSize is the mailbox capacity when Config.MailboxSize is 0.
	DefaultMailboxSize = actorkit.DefaultMailboxSize
	// DefaultRestartBackoff is the first restart delay when
	// Config.RestartBackoff is 0.
	DefaultRestartBackoff = actorkit.DefaultRestartBackoff
	// DefaultMaxRestartBackoff caps the restart delay when
	// Config.MaxRestartBackoff is 0.
	DefaultMaxRestartBackoff = actorkit.DefaultMaxRestartBackoff
)

// Supervision says what happens to an actor whose handler panics. It is
// [actorkit.Supervision]; its String method returns the constant's name.
type Supervision = actorkit.Supervision

const (
	// RestartOnPanic resumes the actor with its next queued message after a
	// backoff that doubles with each consecutive panic. It is the zero value.
	RestartOnPanic = actorkit.RestartOnPanic
	// StopOnPanic stops the actor, discarding its queued messages.
	StopOnPanic = actorkit.StopOnPanic
)

// Config configures a Runtime. The zero value is valid: every zero field
// means its default. A Config converts to [actorkit.Settings], which
// validates it and applies the defaults.
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
	// Clock schedules timers and restart backoffs. Nil means
	// dstate.SystemClock; tests pass a *dstatetest.TestClock.
	Clock dstate.TimerClock
	// Logger receives panic and restart records. Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every field set to its default.
func DefaultConfig() Config { return Config(actorkit.DefaultSettings()) }

// Validate reports the first field that is out of range as a *ConfigError
// wrapping ErrInvalidConfig. It does not change c.
func (c Config) Validate() error {
	if v := actorkit.Settings(c).Check(); v != nil {
		return (*ConfigError)(v)
	}
	return nil
}
