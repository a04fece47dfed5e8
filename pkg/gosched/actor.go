package gosched

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Actor is an actor spawned by a Runtime; Spawn's dstate.ActorRef is an
// *Actor. It is safe for concurrent use.
type Actor struct {
	rt      *Runtime
	name    string
	handler func(msg any)

	// The mailbox: senders append to queue under mu; the actor's goroutine
	// swaps queue for an empty slice and handles the batch it took.
	mu      sync.Mutex
	queue   []any
	waiting bool // the goroutine is parked on wake
	stopped bool
	// inline: a SendInline caller is running the handler (see SendInline);
	// the goroutine takes nothing until it is done.
	inline bool
	// handoff is a panic of an inline run, for the goroutine to supervise
	// (and back off for) before it handles anything else.
	handoff *panicInfo
	// consecutive counts panics since the last message handled normally.
	// Only whoever runs the handler (the goroutine, or an inline caller)
	// touches it; mu orders the two.
	consecutive int
	// processed counts handler calls that returned normally. It is the
	// actor's own, not the runtime's, so that actors running on different
	// processors do not share a cache line for it; Runtime.Stats adds the
	// live actors' counts, and the goroutine moves its count to the
	// runtime's when it exits.
	processed atomic.Uint64

	wake     chan struct{} // capacity 1: a send after the goroutine parked
	stopCh   chan struct{} // closed by Stop
	done     chan struct{} // closed when the goroutine exits
	stopping atomic.Bool   // set with stopped; read lock-free by the goroutine
	stopOnce sync.Once

	errFull, errStopped error // preallocated Send errors
}

var _ dstate.InlineSender = (*Actor)(nil)

func newActor(rt *Runtime, name string, handler func(msg any)) *Actor {
	return &Actor{
		rt:         rt,
		name:       name,
		handler:    handler,
		wake:       make(chan struct{}, 1),
		stopCh:     make(chan struct{}),
		done:       make(chan struct{}),
		errFull:    &dstate.ActorSendError{Kind: dstate.ErrMailboxFull, Actor: name},
		errStopped: &dstate.ActorSendError{Kind: dstate.ErrActorStopped, Actor: name},
	}
}

// Name returns the name the actor was spawned with.
func (a *Actor) Name() string { return a.name }

// String returns the actor's name.
func (a *Actor) String() string { return a.name }

// Send enqueues msg without blocking. It fails with a *dstate.ActorSendError
// of Kind dstate.ErrMailboxFull when the mailbox holds MailboxSize messages
// and dstate.ErrActorStopped once Stop has been called.
func (a *Actor) Send(msg any) error { return a.rt.kit.Counters.CountSend(a.send(msg)) }

// send is Send without the statistics.
func (a *Actor) send(msg any) error {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return a.errStopped
	}
	if len(a.queue) >= a.rt.cfg.MailboxSize {
		a.mu.Unlock()
		return a.errFull
	}
	a.queue = append(a.queue, msg)
	wake := a.waiting
	a.waiting = false
	a.mu.Unlock()
	if wake {
		a.signal()
	}
	return nil
}

// SendInline is Send, except that when the actor is idle (its goroutine
// parked, nothing queued) the handler runs for msg on the calling goroutine
// before SendInline returns, saving the wake-up of the actor's goroutine.
// Messages sent meanwhile queue behind msg and run on the actor's
// goroutine. A panic is recovered and counted as on the goroutine; the
// restart backoff, if any, is served by the actor's goroutine, not the
// caller. ran reports whether the handler ran for msg on the caller. See
// [dstate.InlineSender].
func (a *Actor) SendInline(msg any) (ran bool, err error) {
	a.mu.Lock()
	if a.stopped || !a.waiting || a.inline || a.handoff != nil || len(a.queue) > 0 {
		a.mu.Unlock()
		return false, a.Send(msg)
	}
	a.inline = true
	a.mu.Unlock()
	a.rt.kit.Counters.CountSend(nil)
	one := [1]any{msg}
	_, ok, p := a.handle(one[:])
	a.processed.Add(uint64(ok))
	a.mu.Lock()
	a.inline = false
	if p != nil {
		a.handoff = p
	} else if ok > 0 {
		a.consecutive = 0
	}
	// The goroutine waits for the end of an inline run when there is
	// something for it: queued messages, a panic to supervise, or its stop.
	wake := a.waiting && (len(a.queue) > 0 || a.handoff != nil || a.stopped)
	if wake {
		a.waiting = false
	}
	a.mu.Unlock()
	if wake {
		a.signal()
	}
	return true, nil
}

// signal wakes the actor's goroutine parked in take (a wake-up already
// pending is enough).
func (a *Actor) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// Stop stops the actor and discards its queued messages. After Stop returns
// the handler is not called again; a call already in progress (including
// the one calling Stop, if any) runs to completion, and Done is closed when
// it has. Stop also cancels every timer targeting the actor, removes it from
// all groups and frees its name. Stop is idempotent and safe to call from
// the actor's own handler.
func (a *Actor) Stop() {
	a.stopOnce.Do(func() {
		a.mu.Lock()
		a.stopped = true
		a.stopping.Store(true)
		a.queue = nil
		a.mu.Unlock()
		close(a.stopCh)
		a.rt.forget(a)
	})
}

// Done returns a channel that is closed when the actor's goroutine has
// exited, after Stop (or a panic under StopOnPanic).
func (a *Actor) Done() <-chan struct{} { return a.done }

// run is the actor's goroutine.
func (a *Actor) run() {
	clean := false
	defer func() {
		if !clean { // the handler called runtime.Goexit
			a.Stop()
		}
		a.rt.retire(a)
		close(a.done)
	}()
	var batch []any
	for {
		var p *panicInfo
		batch, p = a.take(batch)
		if p != nil { // an inline run panicked
			a.consecutive++
			if !a.supervise(p, a.consecutive) {
				clean = true
				return
			}
			continue
		}
		if batch == nil {
			clean = true
			return
		}
		for i := 0; i < len(batch); {
			n, ok, p := a.handle(batch[i:])
			i += n
			a.processed.Add(uint64(ok))
			if ok > 0 {
				a.consecutive = 0
			}
			if p == nil {
				continue // the batch is done or the actor is stopping
			}
			a.consecutive++
			if !a.supervise(p, a.consecutive) {
				clean = true
				return
			}
		}
		clear(batch)
	}
}

// take waits for queued messages and takes them all, handing spare's
// storage to the queue, or for the panic of an inline run to supervise. It
// returns a nil batch once the actor is stopped and no inline run is in
// progress (so that Done is closed after the last handler call).
func (a *Actor) take(spare []any) ([]any, *panicInfo) {
	a.mu.Lock()
	for a.inline || (a.handoff == nil && !a.stopped && len(a.queue) == 0) {
		a.waiting = true
		afterStop := a.stopped // then only an inline run keeps us here
		a.mu.Unlock()
		if afterStop {
			<-a.wake // the inline run in progress wakes us when it ends
		} else {
			select {
			case <-a.wake:
			case <-a.stopCh:
			}
		}
		a.mu.Lock()
	}
	a.waiting = false
	if p := a.handoff; p != nil && !a.stopped {
		a.handoff = nil
		a.mu.Unlock()
		return nil, p
	}
	if a.stopped {
		a.mu.Unlock()
		return nil, nil
	}
	batch := a.queue
	a.queue = spare[:0]
	a.mu.Unlock()
	return batch, nil
}

// panicInfo is a recovered handler panic.
type panicInfo struct {
	value any
	stack []byte
}

// handle calls the handler for each of msgs until one panics or the actor
// is stopping. It returns how many messages it consumed, how many of those
// returned normally, and the panic, if one ended the run.
func (a *Actor) handle(msgs []any) (consumed, ok int, p *panicInfo) {
	defer func() {
		if v := recover(); v != nil {
			p = &panicInfo{value: v, stack: debug.Stack()}
			ok = consumed
			consumed++
		}
	}()
	for consumed < len(msgs) && !a.stopping.Load() {
		a.handler(msgs[consumed])
		consumed++
	}
	if a.stopping.Load() {
		consumed = len(msgs)
	}
	return consumed, consumed, nil
}

// supervise records a handler panic and applies the Supervision policy. It
// reports whether the actor should go on.
func (a *Actor) supervise(p *panicInfo, consecutive int) bool {
	a.rt.kit.Counters.Panics.Add(1)
	a.rt.logger.Error("gosched: actor handler panicked",
		slog.String("actor", a.name),
		slog.Any("panic", p.value),
		slog.String("stack", string(p.stack)))
	if a.rt.cfg.Supervision == StopOnPanic {
		a.rt.logger.Warn("gosched: stopping actor after panic", slog.String("actor", a.name))
		a.Stop()
		return false
	}
	d := a.rt.cfg.Backoff(consecutive)
	a.rt.logger.Warn("gosched: restarting actor after backoff",
		slog.String("actor", a.name),
		slog.Duration("backoff", d),
		slog.Int("consecutive_panics", consecutive))
	fired := make(chan struct{})
	s := a.rt.clock.AfterFunc(d, func() { close(fired) })
	select {
	case <-fired:
	case <-a.stopCh:
		s.Stop()
		return false
	}
	if a.stopping.Load() {
		return false
	}
	a.rt.kit.Counters.Restarts.Add(1)
	return true
}

// isStopping reports whether Stop has been called; it is the
// actorkit.Binding's Stopping.
func (a *Actor) isStopping() bool { return a.stopping.Load() }
