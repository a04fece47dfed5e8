package dstate

import "time"

// ActorRuntime runs actors: named goroutine-like units that process their
// messages one at a time, in order. The host runs each state's engine in one
// actor. An implementation is safe for concurrent use; none of its methods
// blocks on a mailbox.
type ActorRuntime interface {
	// Spawn starts an actor that calls handler for each message, in order,
	// never concurrently. Names must be unique among running actors.
	Spawn(name string, handler func(msg any)) (ActorRef, error)
	// SendAfter delivers msg to target once after delay.
	SendAfter(target ActorRef, delay time.Duration, msg any) TimerHandle
	// SendInterval delivers msg to target every interval, the first time
	// after one interval.
	SendInterval(target ActorRef, interval time.Duration, msg any) TimerHandle
	// JoinGroup adds an actor to a processing group (idempotent).
	JoinGroup(group string, actor ActorRef) error
	// LeaveGroup removes an actor from a group (idempotent).
	LeaveGroup(group string, actor ActorRef) error
	// BroadcastGroup sends msg to every member of the group and returns the
	// joined errors of the members it could not reach.
	BroadcastGroup(group string, msg any) error
	// GroupMembers lists the running members of a group.
	GroupMembers(group string) ([]ActorRef, error)
}

// ActorRef addresses a running actor. It is safe for concurrent use.
type ActorRef interface {
	// Name is the name the actor was spawned with.
	Name() string
	// Send enqueues msg without blocking. It returns an *ActorSendError when
	// the mailbox is full or the actor has stopped.
	Send(msg any) error
	// Stop stops the actor (idempotent). Whether queued messages are
	// processed is the runtime's documented choice.
	Stop()
}

// TimerHandle cancels a timer started by SendAfter or SendInterval.
type TimerHandle interface {
	// Cancel stops the timer; it is idempotent and never blocks on the
	// target's mailbox.
	Cancel()
}
