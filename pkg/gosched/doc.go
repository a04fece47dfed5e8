// Package gosched runs actors on goroutines: it is the goroutine
// implementation of [dstate.ActorRuntime], with the optional processing
// groups of [dstate.GroupRuntime].
//
// Each actor spawned by a [Runtime] owns one goroutine that calls the actor's
// handler for each message, in the order the messages were accepted, never
// concurrently. Messages wait in a bounded mailbox; [Actor.Send] never
// blocks and reports a full mailbox or a stopped actor as a
// *[dstate.ActorSendError].
//
// [Actor.SendInline] (the optional [dstate.InlineSender]) is Send for the
// hot paths: when the actor is idle (its goroutine parked, nothing queued)
// the handler runs for the message on the calling goroutine, which saves
// waking the actor's goroutine; otherwise the message queues as with Send.
// The guarantees are the same either way: one message at a time, in the
// order accepted, never after Stop, and a panic is supervised by the
// actor (its restart backoff is served by the actor's goroutine, never by
// the caller).
//
// # Mailboxes
//
// A mailbox holds at most [Config.MailboxSize] messages that the actor has
// not started on yet. The actor takes everything waiting in one batch and
// then handles the batch message by message, so a message stops counting
// against the mailbox once its batch is taken. While the handler is busy
// with one message, the mailbox accepts exactly MailboxSize more.
//
// # Stopping
//
// [Actor.Stop] is idempotent and discards the messages still queued: after
// Stop returns the handler is not called again, except that a call already
// in progress runs to completion. [Actor.Done] is closed when the actor's
// goroutine has exited. Stop cancels every timer that targets the actor and
// removes it from all its processing groups, and its name may be spawned
// again at once. [Runtime.Close] stops every actor and waits for all their
// goroutines to exit.
//
// # Panics and supervision
//
// A panic in a handler is recovered, logged with the actor's name and
// counted in [Stats]. Under [RestartOnPanic] the actor resumes with the next
// message of the same mailbox after an exponential backoff (RestartBackoff,
// doubled for each consecutive panic, at most MaxRestartBackoff); under
// [StopOnPanic] it stops as if Stop had been called. A panic never reaches
// the process.
//
// # Timers
//
// SendAfter and SendInterval schedule through the [dstate.TimerClock] of
// the [Config]: [dstate.SystemClock] in production and a
// *dstatetest.TestClock in tests, which fires timers only when the test
// advances it. A timer never blocks: a tick whose target's mailbox is full
// is dropped and counted.
package gosched
