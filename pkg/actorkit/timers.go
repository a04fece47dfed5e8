package actorkit

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Timers schedules a runtime's SendAfter and SendInterval timers on a
// dstate.TimerClock. A tick never blocks: it is delivered with
// Binding.Deliver to an actor of the runtime and with Send to any other
// dstate.ActorRef, and a tick the target cannot take (a full mailbox) is
// dropped and counted in Dropped. A target that reports dstate.ErrActorStopped ends its timer.
//
// The runtime calls CancelAll when one of its actors stops and Close when
// it closes; after Close, or for an actor that is stopping, SendAfter and
// SendInterval start nothing.
type Timers[A Actor] struct {
	clock   dstate.TimerClock
	bind    Binding[A]
	dropped atomic.Uint64

	mu      sync.Mutex
	closed  bool
	owned   map[A]map[*timer[A]]struct{} // timers by target, for the runtime's actors
	foreign map[*timer[A]]struct{}       // timers targeting refs of other runtimes
}

// NewTimers returns a scheduler on clock for the actors bind describes.
func NewTimers[A Actor](clock dstate.TimerClock, bind Binding[A]) *Timers[A] {
	return &Timers[A]{
		clock:   clock,
		bind:    bind,
		owned:   make(map[A]map[*timer[A]]struct{}),
		foreign: make(map[*timer[A]]struct{}),
	}
}

// NopTimer is the handle of a timer that was never started; its Cancel
// does nothing.
type NopTimer struct{}

// Cancel does nothing.
func (NopTimer) Cancel() {}

var _ dstate.TimerHandle = NopTimer{}

// SendAfter delivers msg to target once, after delay. It returns a
// NopTimer for a nil target, after Close, and for an actor of the runtime
// that is stopping.
func (s *Timers[A]) SendAfter(target dstate.ActorRef, delay time.Duration, msg any) dstate.TimerHandle {
	return s.start(target, delay, 0, msg)
}

// SendInterval delivers msg to target every interval, the first time one
// interval from now, until cancelled or target stops. Ticks are due at
// fixed times (start + k·interval); ticks missed while the clock ran late
// are skipped rather than delivered in a burst. A non-positive interval
// starts nothing (a NopTimer), as do the cases of SendAfter.
func (s *Timers[A]) SendInterval(target dstate.ActorRef, interval time.Duration, msg any) dstate.TimerHandle {
	if interval <= 0 {
		return NopTimer{}
	}
	return s.start(target, interval, interval, msg)
}

// CancelAll cancels every timer targeting a. The runtime calls it once a is
// stopping (see Binding.Stopping).
func (s *Timers[A]) CancelAll(a A) {
	s.mu.Lock()
	timers := s.owned[a]
	delete(s.owned, a)
	s.mu.Unlock()
	for t := range timers {
		t.cancel()
	}
}

// Close cancels every timer and makes SendAfter and SendInterval start
// nothing from then on. It is idempotent.
func (s *Timers[A]) Close() {
	s.mu.Lock()
	s.closed = true
	var timers []*timer[A]
	for _, set := range s.owned {
		for t := range set {
			timers = append(timers, t)
		}
	}
	for t := range s.foreign {
		timers = append(timers, t)
	}
	clear(s.owned)
	clear(s.foreign)
	s.mu.Unlock()
	for _, t := range timers {
		t.cancel()
	}
}

// Dropped returns how many ticks were dropped because their target could
// not take them.
func (s *Timers[A]) Dropped() uint64 { return s.dropped.Load() }

func (s *Timers[A]) start(target dstate.ActorRef, delay, interval time.Duration, msg any) dstate.TimerHandle {
	if target == nil {
		return NopTimer{}
	}
	t := &timer[A]{s: s, target: target, msg: msg, interval: interval}
	t.own, t.owned = s.bind.Own(target)
	s.mu.Lock()
	if s.closed || (t.owned && s.bind.Stopping(t.own)) {
		s.mu.Unlock()
		return NopTimer{}
	}
	if t.owned {
		add(s.owned, t.own, t)
	} else {
		s.foreign[t] = struct{}{}
	}
	// Hold t.mu until the stopper is set, so that a firing or a Cancel
	// racing with this call sees it.
	t.mu.Lock()
	s.mu.Unlock()
	t.next = s.clock.Now().Add(delay)
	t.stopper = s.clock.AfterFunc(delay, t.fire)
	t.mu.Unlock()
	return t
}

// unregister forgets t.
func (s *Timers[A]) unregister(t *timer[A]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.owned {
		if set := s.owned[t.own]; set != nil {
			delete(set, t)
		}
	} else {
		delete(s.foreign, t)
	}
}

// timer is a SendAfter or SendInterval timer; it implements
// dstate.TimerHandle.
type timer[A Actor] struct {
	s        *Timers[A]
	target   dstate.ActorRef
	own      A    // target as an actor of the runtime, if owned
	owned    bool // target is the runtime's own actor
	msg      any
	interval time.Duration // 0 for SendAfter

	mu       sync.Mutex // held while delivering, so Cancel waits out a delivery
	canceled bool
	next     time.Time // the due time of the pending tick
	stopper  dstate.Stopper
}

// fire delivers one tick and, for an interval timer, schedules the next.
func (t *timer[A]) fire() {
	t.mu.Lock()
	if t.canceled {
		t.mu.Unlock()
		return
	}
	var err error
	if t.owned {
		err = t.s.bind.Deliver(t.own, t.msg)
	} else {
		err = t.target.Send(t.msg)
	}
	switch {
	case err == nil:
	case errors.Is(err, dstate.ErrMailboxFull):
		t.s.dropped.Add(1)
	case errors.Is(err, dstate.ErrActorStopped):
		t.canceled = true // the target is gone for good
	default: // another runtime's own failure
		t.s.dropped.Add(1)
	}
	done := t.canceled || t.interval == 0
	if done {
		t.canceled = true
	} else {
		now := t.s.clock.Now()
		t.next = t.next.Add(t.interval)
		if !t.next.After(now) { // the clock ran late: skip the missed ticks
			missed := now.Sub(t.next)/t.interval + 1
			t.next = t.next.Add(missed * t.interval)
		}
		t.stopper = t.s.clock.AfterFunc(t.next.Sub(now), t.fire)
	}
	t.mu.Unlock()
	if done {
		t.s.unregister(t)
	}
}

// Cancel stops the timer. It is idempotent and never blocks on a mailbox;
// once it returns, the timer delivers nothing more.
func (t *timer[A]) Cancel() {
	if t.cancel() {
		t.s.unregister(t)
	}
}

// cancel stops the timer without unregistering it and reports whether this
// call cancelled it.
func (t *timer[A]) cancel() bool {
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
