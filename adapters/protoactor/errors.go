package protoactor

import "errors"

// Sentinel errors of the adapter. Errors returned by this package wrap or
// match them, so callers test with errors.Is. Send failures are reported as
// *dstate.ActorSendError with Kind dstate.ErrMailboxFull or
// dstate.ErrActorStopped, group failures as *dstate.GroupError and invalid
// Options as *OptionsError.
var (
	// ErrInvalidOptions: an Options field is out of range; the error is an
	// *OptionsError naming the field.
	ErrInvalidOptions = errors.New("protoactor: invalid options")
	// ErrSpawn: proto.actor refused to spawn the actor; the error wraps
	// proto.actor's own.
	ErrSpawn = errors.New("protoactor: spawn failed")
)

// The errors of the runtime's bookkeeping (package actorkit), which every
// runtime built on it has.
var (
	// ErrDuplicateActor: a running actor of the runtime already has the
	// name.
	ErrDuplicateActor = errors.New("protoactor: duplicate actor name")
	// ErrNilHandler: Spawn was given a nil handler.
	ErrNilHandler = errors.New("protoactor: nil handler")
	// ErrClosed: the runtime has been closed.
	ErrClosed = errors.New("protoactor: runtime closed")
	// ErrForeignActor: the ActorRef was not spawned by this runtime.
	ErrForeignActor = errors.New("protoactor: actor not spawned by this runtime")
)
