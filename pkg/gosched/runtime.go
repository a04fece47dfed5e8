package gosched

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Runtime runs actors on goroutines. It implements dstate.ActorRuntime and
// is safe for concurrent use. Create one with New and release it with Close.
type Runtime struct {
	cfg    Config // with defaults applied
	clock  Clock
	logger *slog.Logger

	wg        sync.WaitGroup // one per actor goroutine
	closeOnce sync.Once

	mu      sync.Mutex // guards the fields below and Actor.groups, Actor.timers
	closed  bool
	actors  map[string]*Actor              // running actors by name
	groups  map[string]map[*Actor]struct{} // group name to members
	foreign map[*timer]struct{}            // timers targeting refs of other runtimes

	panics       atomic.Uint64
	restarts     atomic.Uint64
	processed    atomic.Uint64
	rejected     atomic.Uint64
	ticksDropped atomic.Uint64
}

var _ dstate.ActorRuntime = (*Runtime)(nil)

// New returns a Runtime configured by cfg, or cfg's validation error. Zero
// fields of cfg take their defaults; cfg itself is not changed.
func New(cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Runtime{
		cfg:     cfg,
		clock:   cfg.Clock,
		logger:  cfg.Logger,
		actors:  make(map[string]*Actor),
		groups:  make(map[string]map[*Actor]struct{}),
		foreign: make(map[*timer]struct{}),
	}, nil
}

// Spawn starts an actor named name whose goroutine calls handler for each
// message, in order, never concurrently. The returned ActorRef is an
// *Actor. Spawn fails with ErrDuplicateActor if a running actor has the
// name, ErrNilHandler if handler is nil and ErrClosed after Close.
func (r *Runtime) Spawn(name string, handler func(msg any)) (dstate.ActorRef, error) {
	a, err := r.SpawnActor(name, handler)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// SpawnActor is Spawn returning the concrete *Actor.
func (r *Runtime) SpawnActor(name string, handler func(msg any)) (*Actor, error) {
	if handler == nil {
		return nil, fmt.Errorf("%w: actor %q", ErrNilHandler, name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("%w: spawn %q", ErrClosed, name)
	}
	if _, ok := r.actors[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrDuplicateActor, name)
	}
	a := newActor(r, name, handler)
	r.actors[name] = a
	r.wg.Go(a.run)
	return a, nil
}

// Close stops every actor, cancels every timer and waits until all actor
// goroutines have exited (a handler call in progress runs to completion
// first). Later Spawns fail with ErrClosed and sends to the stopped actors
// fail with dstate.ErrActorStopped. Close is idempotent; it must not be
// called from a handler, whose goroutine it would wait for.
func (r *Runtime) Close() {
	r.closeOnce.Do(func() {
		r.mu.Lock()
		r.closed = true
		actors := make([]*Actor, 0, len(r.actors))
		for _, a := range r.actors {
			actors = append(actors, a)
		}
		timers := make([]*timer, 0, len(r.foreign))
		for t := range r.foreign {
			timers = append(timers, t)
		}
		r.mu.Unlock()
		for _, a := range actors {
			a.Stop()
		}
		for _, t := range timers {
			t.Cancel()
		}
	})
	r.wg.Wait()
}

// Stats are the runtime's counters since New. Each is read atomically but
// they are not a consistent snapshot of one instant.
type Stats struct {
	// Panics counts handler calls that panicked.
	Panics uint64
	// Restarts counts actors resumed after a panic under RestartOnPanic.
	Restarts uint64
	// MessagesProcessed counts handler calls that returned normally.
	MessagesProcessed uint64
	// SendsRejected counts Send and BroadcastGroup deliveries that failed
	// because a mailbox was full or its actor had stopped.
	SendsRejected uint64
	// TimerTicksDropped counts timer deliveries dropped because the
	// target's mailbox was full.
	TimerTicksDropped uint64
}

// Stats returns the runtime's counters.
func (r *Runtime) Stats() Stats {
	return Stats{
		Panics:            r.panics.Load(),
		Restarts:          r.restarts.Load(),
		MessagesProcessed: r.processed.Load(),
		SendsRejected:     r.rejected.Load(),
		TimerTicksDropped: r.ticksDropped.Load(),
	}
}

// own returns ref as an actor of this runtime.
func (r *Runtime) own(ref dstate.ActorRef) (*Actor, bool) {
	a, ok := ref.(*Actor)
	if !ok || a == nil || a.rt != r {
		return nil, false
	}
	return a, true
}

// forget removes a stopping actor from the name table and its groups and
// cancels its timers. It runs once per actor, after a.stopping is set, so
// JoinGroup and SendAfter (which check a.stopping under r.mu) cannot
// register it anew.
func (r *Runtime) forget(a *Actor) {
	r.mu.Lock()
	if r.actors[a.name] == a {
		delete(r.actors, a.name)
	}
	for g := range a.groups {
		members := r.groups[g]
		delete(members, a)
		if len(members) == 0 {
			delete(r.groups, g)
		}
	}
	a.groups = nil
	timers := a.timers
	a.timers = nil
	r.mu.Unlock()
	for t := range timers {
		t.cancel()
	}
}

// backoff returns the restart delay after the n-th consecutive panic
// (n >= 1).
func (r *Runtime) backoff(n int) time.Duration {
	d := r.cfg.RestartBackoff
	for i := 1; i < n && d < r.cfg.MaxRestartBackoff; i++ {
		d *= 2
	}
	return min(d, r.cfg.MaxRestartBackoff)
}
