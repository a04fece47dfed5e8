package gosched

import (
	"errors"
	"fmt"
)

// Sentinel errors of the runtime. Errors returned by this package wrap or
// match them, so callers test with errors.Is. Send failures are reported as
// *dstate.ActorSendError with Kind dstate.ErrMailboxFull or
// dstate.ErrActorStopped, and group failures as *dstate.GroupError.
var (
	// ErrInvalidConfig: a Config field is out of range; the error is a
	// *ConfigError naming the field.
	ErrInvalidConfig = errors.New("gosched: invalid config")
	// ErrDuplicateActor: a running actor already has the name.
	ErrDuplicateActor = errors.New("gosched: duplicate actor name")
	// ErrNilHandler: Spawn was given a nil handler.
	ErrNilHandler = errors.New("gosched: nil handler")
	// ErrClosed: the runtime has been closed.
	ErrClosed = errors.New("gosched: runtime closed")
	// ErrForeignActor: the ActorRef was not spawned by this runtime.
	ErrForeignActor = errors.New("gosched: actor not spawned by this runtime")
)

// ConfigError reports a Config field that Validate rejected.
type ConfigError struct {
	Field  string // the Config field, e.g. "MailboxSize"
	Value  any    // the rejected value
	Reason string // what the value must satisfy
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s = %v: %s", ErrInvalidConfig, e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }
