package protoactor

import (
	"errors"
	"fmt"
)

// Sentinel errors of the adapter. Errors returned by this package wrap or
// match them, so callers test with errors.Is. Send failures are reported as
// *dstate.ActorSendError with Kind dstate.ErrMailboxFull or
// dstate.ErrActorStopped, and group failures as *dstate.GroupError.
var (
	// ErrInvalidOptions: an Options field is out of range; the error is an
	// *OptionsError naming the field.
	ErrInvalidOptions = errors.New("protoactor: invalid options")
	// ErrDuplicateActor: a running actor of the runtime already has the
	// name.
	ErrDuplicateActor = errors.New("protoactor: duplicate actor name")
	// ErrNilHandler: Spawn was given a nil handler.
	ErrNilHandler = errors.New("protoactor: nil handler")
	// ErrClosed: the runtime has been closed.
	ErrClosed = errors.New("protoactor: runtime closed")
	// ErrForeignActor: the ActorRef was not spawned by this runtime.
	ErrForeignActor = errors.New("protoactor: actor not spawned by this runtime")
	// ErrSpawn: proto.actor refused to spawn the actor; the error wraps
	// proto.actor's own.
	ErrSpawn = errors.New("protoactor: spawn failed")
)

// OptionsError reports an Options field that Validate rejected.
type OptionsError struct {
	Field  string // the Options field, e.g. "MailboxSize"
	Value  any    // the rejected value
	Reason string // what the value must satisfy
}

// Error implements error.
func (e *OptionsError) Error() string {
	return fmt.Sprintf("%v: %s = %v: %s", ErrInvalidOptions, e.Field, e.Value, e.Reason)
}

// Unwrap returns ErrInvalidOptions.
func (e *OptionsError) Unwrap() error { return ErrInvalidOptions }
