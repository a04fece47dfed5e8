// Package protoactor runs dstate on proto.actor
// (github.com/asynkron/protoactor-go): [Runtime] implements
// [dstate.ActorRuntime], so a pkg/node node whose Config.Runtime is a
// Runtime runs each state's engine as a proto.actor actor, next to the
// application's own actors.
//
// Each actor spawned through the Runtime is a proto.actor actor built from
// props (actor.PropsFromFunc) in an actor system: the application's, given
// as [Options.System], or one New creates. Its handler is called for each
// message, in the order the messages were accepted, never concurrently.
// [Actor.PID] is its proto.actor process ID.
//
// # Mailboxes
//
// [Actor.Send] never blocks and reports a full mailbox or a stopped actor
// as a *[dstate.ActorSendError]. proto.actor's own mailboxes cannot do
// that: Bounded makes the sender wait for room and BoundedDropping silently
// evicts the oldest message. So Send counts the messages it accepted that
// the actor has not started on, and refuses one more than
// [Options.MailboxSize]; the proto.actor queue underneath is unbounded and
// never holds more than that many of them. While the handler is busy with
// one message, the mailbox accepts exactly MailboxSize more.
//
// Messages travel wrapped, so proto.actor never interprets them: nil, a
// MessageBatch or a proto.actor system message sent through Send reaches
// the handler as it was sent. A message that proto.actor code sends to the
// PID directly reaches the handler too, but is not counted; proto.actor's
// lifecycle and control messages (Started, Stopping, PoisonPill…) are not
// passed to the handler.
//
// # Stopping
//
// [Actor.Stop] is idempotent, never blocks and discards the messages still
// queued (it sends proto.actor's Stop system message, which overtakes
// them): after Stop returns the handler is not called again, except that a
// call already in progress runs to completion. [Actor.Done] is closed when
// proto.actor has stopped the actor. Stop cancels every timer that targets
// the actor and a pending restart, removes it from all its processing
// groups, and its name may be spawned again at once: the PID's Id is the
// name plus a suffix unique in the actor system, so the new actor never
// collides with the old one proto.actor may still be finishing. An actor
// stopped by proto.actor code (a Stop or a PoisonPill to its PID) is
// treated as if Stop had been called. [Runtime.Close] stops every actor and
// waits until proto.actor has stopped them all; it shuts the actor system
// down only if New created it.
//
// # Panics and supervision
//
// A panic in a handler is logged with the actor's name and stack, counted
// in [Stats], and passed on to proto.actor, whose mailbox recovers it,
// suspends the actor and hands the failure to the supervisor strategy of
// the actor's guardian. The Runtime installs its own strategy as that
// guardian (actor.WithGuardian). Under [RestartOnPanic] it has proto.actor
// restart the actor after a backoff (RestartBackoff, doubled for each
// consecutive panic, at most MaxRestartBackoff); the actor resumes with the
// next message of the same mailbox, the one that panicked being dropped.
// Under [StopOnPanic] the actor is stopped as if Stop had been called. A
// panic never reaches the process.
//
// The backoff runs on the Runtime's Clock rather than proto.actor's
// exponential-backoff strategy, which waits on the wall clock with random
// noise: a test must be able to fire it deterministically.
//
// # Timers
//
// SendAfter and SendInterval schedule through [Options.Clock], a
// [dstate.TimerClock]: dstate.SystemClock in production, and in tests a
// clock that fires timers and restart backoffs only when the test advances
// it (dstatetest.TestClock). (proto.actor's scheduler package runs on the
// wall clock only.) A timer never blocks: a tick whose target's mailbox is full
// is dropped and counted.
//
// # Processing groups
//
// The Runtime is a [dstate.GroupRuntime], the optional capability the host
// itself does not use. Groups are kept by the Runtime: proto.actor's
// broadcast router does not report the members it could not reach, which
// BroadcastGroup must.
//
// # Goroutines
//
// proto.actor runs an actor's mailbox on a goroutine that exits when the
// mailbox is empty, and Close waits until every actor has stopped, so a
// closed Runtime leaves no goroutines running (the package's tests check
// that with goleak). The one goroutine proto.actor may start on its own is
// the dead-letter log throttle, after a message reached a stopped actor; it
// ends within the actor system's DeadLetterThrottleInterval.
package protoactor
