package protoactor

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/gosched"
)

// Runtime runs dstate actors as proto.actor actors. It implements
// dstate.ActorRuntime and is safe for concurrent use. Create one with New
// and release it with Close.
type Runtime struct {
	opts       Options // with defaults applied
	system     *actor.ActorSystem
	ownSystem  bool // New created system; Close shuts it down
	clock      gosched.Clock
	logger     *slog.Logger
	dispatcher actor.Dispatcher
	supervisor *supervisor // the guardian strategy of every actor

	live         sync.WaitGroup // one per spawned actor until proto.actor reports it stopped
	closeOnce    sync.Once
	shutdownOnce sync.Once

	mu      sync.Mutex // guards the fields below and Actor.groups, Actor.timers, Actor.restart
	closed  bool
	actors  map[string]*Actor              // running actors by name
	byPID   map[string]*Actor              // running actors by PID Id
	groups  map[string]map[*Actor]struct{} // group name to members
	foreign map[*timer]struct{}            // timers targeting refs of other runtimes

	panics       atomic.Uint64
	restarts     atomic.Uint64
	processed    atomic.Uint64
	rejected     atomic.Uint64
	ticksDropped atomic.Uint64
}

var _ dstate.ActorRuntime = (*Runtime)(nil)

// New returns a Runtime configured by opts, or opts' validation error.
// Zero fields of opts take their defaults; opts itself is not changed.
// Without Options.System, New starts a proto.actor actor system of its own.
func New(opts Options) (*Runtime, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	r := &Runtime{
		opts:       opts,
		system:     opts.System,
		clock:      opts.Clock,
		logger:     opts.Logger,
		dispatcher: actor.NewDefaultDispatcher(opts.Throughput),
		actors:     make(map[string]*Actor),
		byPID:      make(map[string]*Actor),
		groups:     make(map[string]map[*Actor]struct{}),
		foreign:    make(map[*timer]struct{}),
	}
	if r.system == nil {
		logger := opts.Logger
		r.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }))
		r.ownSystem = true
	}
	r.supervisor = &supervisor{rt: r}
	return r, nil
}

// System returns the proto.actor actor system the actors run in.
func (r *Runtime) System() *actor.ActorSystem { return r.system }

// Spawn starts a proto.actor actor whose Receive calls handler for each
// message sent through the returned ActorRef, in order, never concurrently.
// The ActorRef is an *Actor. Spawn fails with ErrDuplicateActor if a running
// actor of this runtime has the name, ErrNilHandler if handler is nil,
// ErrClosed after Close and ErrSpawn if proto.actor refuses.
func (r *Runtime) Spawn(name string, handler func(msg any)) (dstate.ActorRef, error) {
	a, err := r.SpawnActor(name, handler)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// SpawnActor is Spawn returning the concrete *Actor.
//
// The actor's PID Id is name followed by a suffix unique in the actor
// system ("name$3f"), so that a name is free again as soon as its actor is
// stopped, while proto.actor may still be finishing the old one.
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
	id := name + r.system.ProcessRegistry.NextId()
	props := actor.PropsFromFunc(a.receive,
		// The bound is enforced by Actor.Send (see the package doc): the
		// queue underneath must never make a sender wait or drop a message
		// it accepted, as Bounded and BoundedDropping would.
		actor.WithMailbox(actor.Unbounded()),
		actor.WithDispatcher(r.dispatcher),
		actor.WithGuardian(r.supervisor),
	)
	// Spawning does not call into this package synchronously, so r.mu may
	// be held: Stop and Close then never see an actor without its PID.
	pid, err := r.system.Root.SpawnNamed(props, id)
	if err != nil {
		return nil, fmt.Errorf("%w: actor %q: %w", ErrSpawn, name, err)
	}
	a.pid = pid
	r.actors[name] = a
	r.byPID[pid.Id] = a
	r.live.Add(1)
	return a, nil
}

// Close stops every actor, cancels every timer and waits until proto.actor
// has stopped all of them (a handler call in progress runs to completion
// first). Later Spawns fail with ErrClosed and sends to the stopped actors
// fail with dstate.ErrActorStopped. If New created the actor system, Close
// shuts it down. Close is idempotent; it must not be called from a handler,
// whose end it would wait for.
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
	r.live.Wait()
	if r.ownSystem {
		r.shutdownOnce.Do(r.system.Shutdown)
	}
}

// Stats are the runtime's counters since New. Each is read atomically but
// they are not a consistent snapshot of one instant.
type Stats struct {
	// Panics counts handler calls that panicked.
	Panics uint64
	// Restarts counts actors proto.actor restarted after a panic under
	// RestartOnPanic.
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
// cancels its timers and any pending restart. It runs once per actor, after
// a.stopped is set, so JoinGroup, SendAfter and the supervisor (which check
// a.stopped under r.mu) cannot register it anew.
func (r *Runtime) forget(a *Actor) {
	r.mu.Lock()
	if r.actors[a.name] == a {
		delete(r.actors, a.name)
	}
	if r.byPID[a.pid.Id] == a {
		delete(r.byPID, a.pid.Id)
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
	restart := a.restart
	a.restart = nil
	r.mu.Unlock()
	for t := range timers {
		t.cancel()
	}
	if restart != nil {
		restart.Stop()
	}
}

// lookup returns the running actor of this runtime with the PID.
func (r *Runtime) lookup(pid *actor.PID) (*Actor, bool) {
	if pid == nil {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.byPID[pid.Id]
	return a, ok
}

// backoff returns the restart delay after the n-th consecutive panic
// (n >= 1).
func (r *Runtime) backoff(n int) time.Duration {
	d := r.opts.RestartBackoff
	for i := 1; i < n && d < r.opts.MaxRestartBackoff; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxRestartBackoff)
}
