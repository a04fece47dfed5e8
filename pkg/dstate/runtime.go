package dstate

import "time"

// ActorRuntime runs actors: named goroutine-like units that process their
// messages one at a time, in order. The host runs each state's engine in one
// actor, and its change feed in another. An implementation is safe for
// concurrent use; none of its methods blocks on a mailbox.
//
// Who calls what:
//   - Spawn: the goroutine that creates the host's node or registers a
//     state. It does not block on other actors.
//   - SendAfter and SendInterval: that goroutine too, and the host's actors
//     from their handlers (delayed sends, batch and digest timers). They
//     never block.
//   - The handler given to Spawn: the runtime's goroutine for that actor,
//     one message at a time. It may block for as long as the host's work
//     takes (a save to persistence, for instance); the actor's other
//     messages wait meanwhile.
//
// Optional capabilities, detected by type assertion: [GroupRuntime] of the
// runtime, [InlineSender] of its actor references.
type ActorRuntime interface {
	// Spawn starts an actor that calls handler for each message, in order,
	// never concurrently. Names must be unique among running actors.
	Spawn(name string, handler func(msg any)) (ActorRef, error)
	// SendAfter delivers msg to target once after delay. It does not block.
	SendAfter(target ActorRef, delay time.Duration, msg any) TimerHandle
	// SendInterval delivers msg to target every interval, the first time
	// after one interval. It does not block.
	SendInterval(target ActorRef, interval time.Duration, msg any) TimerHandle
}

// GroupRuntime is an optional capability of an [ActorRuntime], detected by
// type assertion: processing groups, named sets of actors a message can be
// broadcast to. The host does not use groups; they are for applications
// that run their own actors on the same runtime:
//
//	if g, ok := rt.(dstate.GroupRuntime); ok {
//		err = g.BroadcastGroup("workers", msg)
//	}
//
// Every method may be called from any goroutine, including an actor's
// handler, and none blocks on a mailbox.
type GroupRuntime interface {
	ActorRuntime
	// JoinGroup adds an actor to a processing group (idempotent).
	JoinGroup(group string, actor ActorRef) error
	// LeaveGroup removes an actor from a group (idempotent).
	LeaveGroup(group string, actor ActorRef) error
	// BroadcastGroup sends msg to every member of the group and returns the
	// joined errors of the members it could not reach, in a *GroupError.
	BroadcastGroup(group string, msg any) error
	// GroupMembers lists the running members of a group.
	GroupMembers(group string) ([]ActorRef, error)
}

// ActorRef addresses a running actor. It is safe for concurrent use: the
// host calls Send from any goroutine (callers of its API, the transport's
// delivery goroutines, the membership feed's goroutine, other actors) and
// Stop from the goroutine that closes the node.
type ActorRef interface {
	// Name is the name the actor was spawned with.
	Name() string
	// Send enqueues msg without blocking. It returns an *ActorSendError when
	// the mailbox is full or the actor has stopped.
	Send(msg any) error
	// Stop stops the actor (idempotent). It does not block: a message in
	// progress runs to completion after it returns, and it may be called
	// from the actor's own handler. Whether queued messages are processed
	// is the runtime's documented choice.
	Stop()
}

// InlineSender is an optional capability of an [ActorRef], detected by type
// assertion: a send that saves the hand-off to the actor's goroutine when
// the actor is idle. The host uses it on its hottest paths (an inbound
// message, a mutation), where waking a parked goroutine costs more than the
// handler itself.
type InlineSender interface {
	ActorRef
	// SendInline is Send, except that when the actor is idle (nothing is
	// queued and its handler is not running) the handler runs for msg on
	// the calling goroutine before SendInline returns. The actor's
	// guarantees hold as for Send: one message at a time, in the order the
	// actor accepted them, never after Stop. Messages sent meanwhile (also
	// by the handler itself) queue and run on the actor's goroutine after
	// it. A handler that panics is supervised as on the actor's goroutine;
	// the caller does not see the panic and is not delayed by a restart
	// backoff. ran reports whether the handler ran for msg before
	// SendInline returned (then the actor holds no reference to msg); it is
	// false when msg was queued, and with every error.
	SendInline(msg any) (ran bool, err error)
}

// TimerHandle cancels a timer started by SendAfter or SendInterval.
type TimerHandle interface {
	// Cancel stops the timer; it is idempotent, may be called from any
	// goroutine and never blocks on the target's mailbox.
	Cancel()
}
