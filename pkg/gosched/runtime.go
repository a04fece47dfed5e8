package gosched

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/dstate-go/dstate/pkg/actorkit"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Runtime runs actors on goroutines. It implements dstate.ActorRuntime with
// its optional dstate.GroupRuntime and is safe for concurrent use. Create
// one with New and release it with Close.
type Runtime struct {
	cfg    actorkit.Settings // with defaults applied
	clock  dstate.TimerClock
	logger *slog.Logger

	wg        sync.WaitGroup // one per actor goroutine
	closeOnce sync.Once

	kit *actorkit.Core[*Actor] // names, groups, timers and counters

	// live holds the actors whose goroutine runs, for Stats to add their
	// own processed counts (see Actor.processed).
	liveMu sync.Mutex
	live   map[*Actor]struct{}
}

var _ dstate.GroupRuntime = (*Runtime)(nil)

// New returns a Runtime configured by cfg, or cfg's validation error. Zero
// fields of cfg take their defaults; cfg itself is not changed.
func New(cfg Config) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runtime{cfg: actorkit.Settings(cfg).WithDefaults(), live: make(map[*Actor]struct{})}
	r.clock, r.logger = r.cfg.Clock, r.cfg.Logger
	r.kit = actorkit.NewCore(r.clock, actorkit.Binding[*Actor]{
		Belongs:    func(a *Actor) bool { return a.rt == r },
		Stopping:   (*Actor).isStopping,
		Deliver:    (*Actor).send,
		ErrForeign: ErrForeignActor,
	}, ErrClosed, ErrDuplicateActor)
	return r, nil
}

// Spawn starts an actor named name whose goroutine calls handler for each
// message, in order, never concurrently. The returned ActorRef is an
// *Actor. Spawn fails with ErrDuplicateActor if a running actor has the
// name, ErrNilHandler if handler is nil and ErrClosed after Close.
func (r *Runtime) Spawn(name string, handler func(msg any)) (dstate.ActorRef, error) {
	return actorkit.Ref(r.SpawnActor(name, handler))
}

// SpawnActor is Spawn returning the concrete *Actor.
func (r *Runtime) SpawnActor(name string, handler func(msg any)) (*Actor, error) {
	if handler == nil {
		return nil, fmt.Errorf("%w: actor %q", ErrNilHandler, name)
	}
	return r.kit.Names.Add(name, func() (*Actor, error) {
		a := newActor(r, name, handler)
		r.liveMu.Lock()
		r.live[a] = struct{}{}
		r.liveMu.Unlock()
		r.wg.Go(a.run)
		return a, nil
	})
}

// Close stops every actor, cancels every timer and waits until all actor
// goroutines have exited (a handler call in progress runs to completion
// first). Later Spawns fail with ErrClosed and sends to the stopped actors
// fail with dstate.ErrActorStopped. Close is idempotent; it must not be
// called from a handler, whose goroutine it would wait for.
func (r *Runtime) Close() {
	r.closeOnce.Do(r.kit.Close)
	r.wg.Wait()
}

// Stats are the runtime's counters since New: [actorkit.Stats]. Restarts
// counts actors resumed after a panic under RestartOnPanic.
type Stats = actorkit.Stats

// Stats returns the runtime's counters.
func (r *Runtime) Stats() Stats {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	s := r.kit.Stats()
	for a := range r.live {
		s.MessagesProcessed += a.processed.Load()
	}
	return s
}

// retire moves the count of an actor whose goroutine is exiting (no
// handler call is in progress or can start) to the runtime's counter.
func (r *Runtime) retire(a *Actor) {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	r.kit.Counters.Processed.Add(a.processed.Load())
	delete(r.live, a)
}

// forget frees a stopping actor's name, removes it from its groups and
// cancels its timers. It runs once per actor, after a.stopping is set, so
// JoinGroup and SendAfter (which check it under their registry's lock)
// cannot register it anew.
func (r *Runtime) forget(a *Actor) { r.kit.Forget(a) }
