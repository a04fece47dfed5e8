package protoactor

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/gosched"
)

// timer is a SendAfter or SendInterval timer; it implements
// dstate.TimerHandle. It runs on the runtime's Clock rather than
// proto.actor's scheduler package, so that a test clock drives it.
type timer struct {
	rt       *Runtime
	target   dstate.ActorRef
	own      *Actor // target if spawned by rt, else nil
	msg      any
	interval time.Duration // 0 for SendAfter

	mu       sync.Mutex // held while delivering, so Cancel waits out a delivery
	canceled bool
	next     time.Time // the due time of the pending tick
	stopper  gosched.Stopper
}

var _ dstate.TimerHandle = (*timer)(nil)

// noTimer is the handle of a timer that was never started.
type noTimer struct{}

// Cancel does nothing.
func (noTimer) Cancel() {}

// SendAfter delivers msg to target once, after delay, through the
// configured Clock. The delivery never blocks: if the mailbox is full then,
// the message is dropped and counted in Stats.TimerTicksDropped. The timer
// is cancelled when target is stopped; after Close, or for a target that
// has already stopped, SendAfter starts nothing.
func (r *Runtime) SendAfter(target dstate.ActorRef, delay time.Duration, msg any) dstate.TimerHandle {
	return r.startTimer(target, delay, 0, msg)
}

// SendInterval delivers msg to target every interval, the first time one
// interval from now, until cancelled or target stops. Ticks are due at
// fixed times (start + k·interval); a tick whose target's mailbox is full
// is dropped and counted in Stats.TimerTicksDropped, and ticks missed while
// the clock ran late are skipped. A non-positive interval starts nothing
// (and is logged).
func (r *Runtime) SendInterval(target dstate.ActorRef, interval time.Duration, msg any) dstate.TimerHandle {
	if interval <= 0 {
		r.logger.Error("protoactor: SendInterval with non-positive interval ignored",
			slog.Duration("interval", interval))
		return noTimer{}
	}
	return r.startTimer(target, interval, interval, msg)
}

func (r *Runtime) startTimer(target dstate.ActorRef, delay, interval time.Duration, msg any) dstate.TimerHandle {
	if target == nil {
		return noTimer{}
	}
	t := &timer{rt: r, target: target, msg: msg, interval: interval}
	t.own, _ = r.own(target)
	r.mu.Lock()
	if r.closed || (t.own != nil && t.own.stopped.Load()) {
		r.mu.Unlock()
		return noTimer{}
	}
	if t.own == nil {
		r.foreign[t] = struct{}{}
	} else {
		if t.own.timers == nil {
			t.own.timers = make(map[*timer]struct{})
		}
		t.own.timers[t] = struct{}{}
	}
	// Hold t.mu until the stopper is set, so that a firing or a Cancel
	// racing with this call sees it.
	t.mu.Lock()
	r.mu.Unlock()
	t.next = r.clock.Now().Add(delay)
	t.stopper = r.clock.AfterFunc(delay, t.fire)
	t.mu.Unlock()
	return t
}

// unregister forgets t.
func (r *Runtime) unregister(t *timer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.own == nil {
		delete(r.foreign, t)
	} else {
		delete(t.own.timers, t)
	}
}

// fire delivers one tick and, for an interval timer, schedules the next.
func (t *timer) fire() {
	t.mu.Lock()
	if t.canceled {
		t.mu.Unlock()
		return
	}
	var err error
	if t.own != nil {
		err = t.own.send(t.msg)
	} else {
		err = t.target.Send(t.msg)
	}
	switch {
	case err == nil:
	case errors.Is(err, dstate.ErrActorStopped):
		t.canceled = true // the target is gone for good
	default: // a full mailbox, or a foreign runtime's own failure
		t.rt.ticksDropped.Add(1)
	}
	done := t.canceled || t.interval == 0
	if done {
		t.canceled = true
	} else {
		now := t.rt.clock.Now()
		t.next = t.next.Add(t.interval)
		if !t.next.After(now) { // the clock ran late: skip the missed ticks
			missed := now.Sub(t.next)/t.interval + 1
			t.next = t.next.Add(missed * t.interval)
		}
		t.stopper = t.rt.clock.AfterFunc(t.next.Sub(now), t.fire)
	}
	t.mu.Unlock()
	if done {
		t.rt.unregister(t)
	}
}

// Cancel stops the timer. It is idempotent and never blocks on a mailbox;
// once it returns, the timer delivers nothing more.
func (t *timer) Cancel() {
	if t.cancel() {
		t.rt.unregister(t)
	}
}

// cancel stops the timer without unregistering it and reports whether this
// call cancelled it.
func (t *timer) cancel() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.canceled {
		return false
	}
	t.canceled = true
	if t.stopper != nil {
		t.stopper.Stop()
	}
	return true
}
