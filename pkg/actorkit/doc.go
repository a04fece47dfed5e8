// Package actorkit holds the building blocks for implementing
// [dstate.ActorRuntime] on any actor framework: the bookkeeping that does
// not depend on how a runtime runs its actors. [github.com/dstate-go/dstate/pkg/gosched]
// (actors on goroutines) and the proto.actor adapter are both built on it.
//
// A runtime brings its own actor type A, which must be comparable (in
// practice a pointer) and a [dstate.ActorRef], and a [Binding] that tells
// the kit which refs are the runtime's own actors, whether one is stopping
// and how to enqueue a timer tick. With them it gets:
//
//   - [Names], the running actors by name, refusing duplicates and spawns
//     after Close;
//   - [Groups], processing groups, the optional [dstate.GroupRuntime]
//     capability: join, leave, leave-all when an actor stops, members in
//     name order, and a broadcast that joins the members' send errors into
//     a *[dstate.GroupError];
//   - [Timers], SendAfter and SendInterval on a [dstate.TimerClock]:
//     interval ticks at fixed times with missed ticks skipped, cancellation
//     of one timer, of an actor's timers when it stops and of every timer
//     on Close, and a count of the ticks dropped on full mailboxes;
//   - [Settings], the configuration every such runtime shares (mailbox
//     bound, [Supervision], restart backoff, clock, logger) with its
//     defaults and validation, and [Counters], its statistics.
//
// The runtime keeps what is particular to it: how an actor runs its
// handler, its mailbox, supervision and its own sentinel errors, which the
// kit wraps where it reports a failure.
//
// Every type of the package is safe for concurrent use. None of them calls
// back into the runtime while holding a lock of its own, except
// [Names.Add], which runs the runtime's start function under the table's
// lock on purpose.
package actorkit
