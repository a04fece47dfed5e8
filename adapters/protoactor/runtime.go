package protoactor

import (
	"cmp"
	"fmt"
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dstate-go/dstate/pkg/actorkit"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Runtime runs dstate actors as proto.actor actors. It implements
// dstate.ActorRuntime with its optional dstate.GroupRuntime and is safe for
// concurrent use. Create one with New and release it with Close.
//
// Its names table, processing groups and timers are those of package
// actorkit. Processing groups are not proto.actor's broadcast router,
// which does not report which members it could not reach, and timers run
// on the runtime's Clock rather than proto.actor's scheduler package, so
// that a test clock drives them.
type Runtime struct {
	cfg        actorkit.Settings // with defaults applied
	system     *actor.ActorSystem
	ownSystem  bool // New created system; Close shuts it down
	clock      dstate.TimerClock
	logger     *slog.Logger
	dispatcher actor.Dispatcher
	supervisor *supervisor // the guardian strategy of every actor

	live         sync.WaitGroup // one per spawned actor until proto.actor reports it stopped
	closeOnce    sync.Once
	shutdownOnce sync.Once

	kit *actorkit.Core[*Actor] // names, groups, timers and counters

	mu    sync.Mutex        // guards byPID and Actor.restart
	byPID map[string]*Actor // running actors by PID Id
}

var _ dstate.GroupRuntime = (*Runtime)(nil)

// New returns a Runtime configured by opts, or opts' validation error.
// Zero fields of opts take their defaults; opts itself is not changed.
// Without Options.System, New starts a proto.actor actor system of its own.
func New(opts Options) (*Runtime, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg := opts.settings().WithDefaults()
	r := &Runtime{
		cfg:        cfg,
		system:     opts.System,
		clock:      cfg.Clock,
		logger:     cfg.Logger,
		dispatcher: actor.NewDefaultDispatcher(cmp.Or(opts.Throughput, DefaultThroughput)),
		byPID:      make(map[string]*Actor),
	}
	belongs := func(a *Actor) bool { return a.rt == r }
	r.kit = actorkit.NewCore(r.clock, actorkit.Binding[*Actor]{Belongs: belongs, Stopping: (*Actor).isStopped,
		Deliver: (*Actor).send, ErrForeign: ErrForeignActor}, ErrClosed, ErrDuplicateActor)
	if r.system == nil {
		logger := r.logger
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
	return actorkit.Ref(r.SpawnActor(name, handler))
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
	return r.kit.Names.Add(name, func() (*Actor, error) { return r.start(name, handler) })
}

// start spawns the proto.actor actor of a new Actor; it runs under the
// names table's lock, so Stop and Close never see an actor without its PID.
func (r *Runtime) start(name string, handler func(msg any)) (*Actor, error) {
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
	// be held: the supervisor never sees a failed actor without its PID.
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := r.system.Root.SpawnNamed(props, id)
	if err != nil {
		return nil, fmt.Errorf("%w: actor %q: %w", ErrSpawn, name, err)
	}
	a.pid = pid
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
	r.closeOnce.Do(r.kit.Close)
	r.live.Wait()
	if r.ownSystem {
		r.shutdownOnce.Do(r.system.Shutdown)
	}
}

// Stats are the runtime's counters since New ([actorkit.Stats]); Restarts
// counts the actors proto.actor restarted after a panic under
// RestartOnPanic.
type Stats = actorkit.Stats

// Stats returns the runtime's counters.
func (r *Runtime) Stats() Stats { return r.kit.Stats() }

// forget frees a stopping actor's name and PID, removes it from its groups
// and cancels its timers and any pending restart. It runs once per actor,
// after a.stopped is set, so JoinGroup, SendAfter and the supervisor
// (which check a.stopped under their locks) cannot register it anew.
func (r *Runtime) forget(a *Actor) {
	r.kit.Forget(a)
	r.mu.Lock()
	if r.byPID[a.pid.Id] == a {
		delete(r.byPID, a.pid.Id)
	}
	restart := a.restart
	a.restart = nil
	r.mu.Unlock()
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
