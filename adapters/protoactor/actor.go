package protoactor

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Actor is an actor spawned by a Runtime: a proto.actor actor plus the
// bookkeeping the dstate.ActorRef contract needs. Spawn's dstate.ActorRef
// is an *Actor. It is safe for concurrent use.
type Actor struct {
	rt      *Runtime
	name    string
	handler func(msg any)
	pid     *actor.PID // set by SpawnActor under rt.mu, before the Actor escapes

	// inflight counts the messages Send accepted that the actor has not
	// started on; Send refuses a message that would take it past
	// MailboxSize.
	inflight    atomic.Int64
	stopped     atomic.Bool
	stopOnce    sync.Once
	consecutive atomic.Int64 // panics since the last message handled normally
	done        chan struct{}
	doneOnce    sync.Once

	errFull, errStopped error // preallocated Send errors

	restart dstate.Stopper // pending restart backoff; guarded by rt.mu
}

var _ dstate.ActorRef = (*Actor)(nil)

// envelope carries a message sent through an Actor, so that proto.actor
// never interprets it (as a system message, a batch, a poison pill…) and
// the actor can tell it from proto.actor's lifecycle messages.
type envelope struct{ msg any }

func newActor(rt *Runtime, name string, handler func(msg any)) *Actor {
	return &Actor{
		rt:         rt,
		name:       name,
		handler:    handler,
		done:       make(chan struct{}),
		errFull:    &dstate.ActorSendError{Kind: dstate.ErrMailboxFull, Actor: name},
		errStopped: &dstate.ActorSendError{Kind: dstate.ErrActorStopped, Actor: name},
	}
}

// Name returns the name the actor was spawned with.
func (a *Actor) Name() string { return a.name }

// String returns the actor's name.
func (a *Actor) String() string { return a.name }

// PID returns the actor's proto.actor process ID, for watching it or
// inspecting it from proto.actor code. Send messages through Send: a
// message sent to the PID by other means reaches the handler too, but is
// not counted against the mailbox bound.
func (a *Actor) PID() *actor.PID { return a.pid }

// Send enqueues msg without blocking. It fails with a *dstate.ActorSendError
// of Kind dstate.ErrMailboxFull when MailboxSize accepted messages are
// waiting, and dstate.ErrActorStopped once Stop has been called. A message
// accepted while Stop runs concurrently may be discarded.
func (a *Actor) Send(msg any) error { return a.rt.kit.Counters.CountSend(a.send(msg)) }

// send is Send without the statistics.
func (a *Actor) send(msg any) error {
	if a.stopped.Load() {
		return a.errStopped
	}
	limit := int64(a.rt.cfg.MailboxSize)
	for {
		n := a.inflight.Load()
		if n >= limit {
			return a.errFull
		}
		if a.inflight.CompareAndSwap(n, n+1) {
			break
		}
	}
	a.rt.system.Root.Send(a.pid, envelope{msg})
	return nil
}

// Stop stops the actor and discards its queued messages: it sends
// proto.actor's Stop system message, which overtakes the user messages
// still queued. After Stop returns the handler is not called again; a call
// already in progress (including the one calling Stop, if any) runs to
// completion, and Done is closed once proto.actor has stopped the actor.
// Stop also cancels every timer targeting the actor and a pending restart,
// removes it from all groups and frees its name. Stop is idempotent, never
// blocks and is safe to call from the actor's own handler.
func (a *Actor) Stop() {
	a.stopOnce.Do(func() {
		a.stopped.Store(true)
		a.rt.forget(a)
		a.rt.system.Root.Stop(a.pid)
	})
}

// isStopped reports whether Stop has been called (or proto.actor stopped
// the actor); it is the actorkit.Binding's Stopping.
func (a *Actor) isStopped() bool { return a.stopped.Load() }

// Done returns a channel that is closed when proto.actor has stopped the
// actor, after Stop (or a panic under StopOnPanic).
func (a *Actor) Done() <-chan struct{} { return a.done }

// receive is the proto.actor Receive function of the actor.
func (a *Actor) receive(c actor.Context) {
	switch m := c.Message().(type) {
	case envelope:
		a.inflight.Add(-1)
		a.deliver(m.msg)
	case *actor.Started, *actor.Restarting, *actor.Stopping:
		// Lifecycle: the handler keeps no proto.actor state to set up.
	case *actor.Stopped:
		// Also when proto.actor code stopped the actor behind Stop's back.
		a.stopOnce.Do(func() {
			a.stopped.Store(true)
			a.rt.forget(a)
		})
		a.doneOnce.Do(func() {
			close(a.done)
			a.rt.live.Done()
		})
	case actor.AutoReceiveMessage, actor.SystemMessage:
		// Other proto.actor control messages are not the handler's.
	default:
		a.deliver(m) // sent to the PID by proto.actor code
	}
}

// deliver calls the handler unless the actor is stopping. A panic is
// counted, logged with its stack and passed on to proto.actor, whose
// mailbox recovers it and hands the failure to the runtime's supervisor.
func (a *Actor) deliver(msg any) {
	if a.stopped.Load() {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			a.consecutive.Add(1)
			a.rt.kit.Counters.Panics.Add(1)
			a.rt.logger.Error("protoactor: actor handler panicked",
				slog.String("actor", a.name),
				slog.Any("panic", v),
				slog.String("stack", string(debug.Stack())))
			panic(v)
		}
	}()
	a.handler(msg)
	a.consecutive.Store(0)
	a.rt.kit.Counters.Processed.Add(1)
}
