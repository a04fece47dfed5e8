package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// StateOptions configure one registered state.
type StateOptions[S any] struct {
	// Config is the state's sync configuration; the zero value is active
	// push with the default pull timeout.
	Config dstate.StateConfig
	// Initial is the state's value when nothing was persisted.
	Initial S
	// Persistence, when set, stores every mutation before it is published
	// and restores the state at registration.
	Persistence dstate.StatePersistence[S]
	// ParallelDecode decodes the state's inbound snapshots of 64 KiB or
	// more on the transport's goroutine that read them, before the state's
	// actor handles them, so that the snapshots of several peers (a node
	// joining a cluster) decode at once (dstate.Engine.DecodeSnapshotView).
	// The definition's DecodeView must be safe for concurrent use, as a
	// stateless definition is.
	ParallelDecode bool
}

// Shard is the typed handle of one registered state on one node. Its
// methods are safe for concurrent use.
type Shard[S, V any] struct {
	n       *Node
	name    string
	eng     *dstate.Engine[S, V]
	def     dstate.StateCodec[S] // what the host needs of the definition beyond the engine
	persist dstate.StatePersistence[S]
	store   dstate.EnvelopeStore // the node's store for the state's durability, if any
	ref     dstate.ActorRef
	frames  frameArena // the actor's frames (see frames.go)
	// send is ref's SendInline when the runtime offers it (see
	// dstate.InlineSender), else ref.Send: the hot paths (an inbound
	// message, a call awaiting its answer) then run on the caller when the
	// actor is idle, saving a goroutine wake-up each.
	send    func(msg any) (ran bool, err error)
	closed  chan struct{} // closed when the shard stops
	calls   sync.Pool     // of *mutateCall
	log     *slog.Logger
	periodT dstate.TimerHandle
	watch   *watchHub[V] // the changes kept for Watch
	// parallel decodes large snapshots before the actor (see
	// StateOptions.ParallelDecode).
	parallel bool

	// Owned by the actor:
	lastSaved []byte // encoding of the last saved (or loaded) value, for rollback
	waiters   []*pullWaiter
	timers    []dstate.TimerHandle
}

// DeltaShard is the handle of a delta state: a [Shard] plus mutations that
// replicate as deltas.
type DeltaShard[S, V, D, C any] struct {
	*Shard[S, V]
	de         *dstate.DeltaEngine[S, V, D, C]
	deltaCalls sync.Pool // of *deltaCall
}

// Register registers a simple state (its whole value is its view): it loads
// the persisted state if any, starts the state's actor and timers, and
// joins the current members.
func Register[S any](ctx context.Context, n *Node, def dstate.DistributedState[S], opts StateOptions[S]) (*Shard[S, S], error) {
	cfg, persist, store, err := stateSetup(n, def, opts)
	if err != nil {
		return nil, err
	}
	eng, err := dstate.NewSimpleEngine(def, n.id, cfg, n.clock, opts.Initial)
	if err != nil {
		return nil, err
	}
	s := &Shard[S, S]{n: n, name: def.Name(), eng: eng, def: def, persist: persist, store: store, closed: make(chan struct{}), watch: newWatchHub[S](), parallel: opts.ParallelDecode}
	if err := s.start(ctx, opts.Initial); err != nil {
		return nil, err
	}
	return s, nil
}

// RegisterDelta registers a delta state; see [Register].
func RegisterDelta[S, V, D, C any](ctx context.Context, n *Node, def dstate.DeltaDistributedState[S, V, D, C], opts StateOptions[S]) (*DeltaShard[S, V, D, C], error) {
	cfg, persist, store, err := stateSetup(n, def, opts)
	if err != nil {
		return nil, err
	}
	de, err := dstate.NewDeltaEngine(def, n.id, cfg, n.clock, opts.Initial)
	if err != nil {
		return nil, err
	}
	s := &Shard[S, V]{n: n, name: def.Name(), eng: de.Engine, def: def, persist: persist, store: store, closed: make(chan struct{}), watch: newWatchHub[V](), parallel: opts.ParallelDecode}
	if err := s.start(ctx, opts.Initial); err != nil {
		return nil, err
	}
	d := &DeltaShard[S, V, D, C]{Shard: s, de: de}
	d.deltaCalls.New = func() any {
		return &deltaCall[S, V, D, C]{mutation: mutation[V]{done: make(chan struct{}, 1)}, d: d}
	}
	return d, nil
}

// stateSetup resolves a registration's config (the engine reads a zero
// SyncStrategy as active push, as everywhere) and persistence (the
// options' own, else the node's store for the configured durability).
func stateSetup[S any](n *Node, def dstate.StateCodec[S], opts StateOptions[S]) (dstate.StateConfig, dstate.StatePersistence[S], dstate.EnvelopeStore, error) {
	cfg := opts.Config
	if cfg.PullTimeout == 0 {
		cfg.PullTimeout = dstate.DefaultPullTimeout
	}
	if opts.Persistence != nil || cfg.Durability == dstate.Memory {
		return cfg, opts.Persistence, nil, nil
	}
	store := n.stores[cfg.Durability]
	if store == nil {
		return cfg, nil, nil, fmt.Errorf("node: state %q wants %s durability, but node %q has no %s store configured (node.Config.Stores)",
			def.Name(), cfg.Durability, n.id, cfg.Durability)
	}
	return cfg, dstate.PersistenceFor(store, n.id, def), store, nil
}

func (s *Shard[S, V]) start(ctx context.Context, initial S) error {
	n := s.n
	s.log = n.log.With("state", s.name)
	s.eng.SetSizeLimits(n.limits) // a mutation peers would refuse is refused here
	// The persistence, its decoders and migrations, and the state's
	// encoders are user code: a panic fails the registration.
	if err := guarded(s.name, dstate.CallbackPersistence, func() error { return s.load(ctx, initial) }); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if _, taken := n.shards[s.name]; taken {
		return &dstate.RegistryError{Kind: dstate.ErrDuplicateName, Name: s.name}
	}
	ref, err := n.rt.Spawn("dstate.state."+string(n.id)+"."+s.name, s.handle)
	if err != nil {
		return fmt.Errorf("node: spawn actor of state %q: %w", s.name, err)
	}
	s.calls.New = func() any {
		return &mutateCall[S, V]{mutation: mutation[V]{done: make(chan struct{}, 1)}, s: s}
	}
	s.ref = ref
	s.send = func(msg any) (bool, error) { return false, ref.Send(msg) }
	if in, ok := ref.(dstate.InlineSender); ok {
		s.send = in.SendInline
	}
	n.shards[s.name] = s
	n.publishNames()
	if d := s.eng.PeriodicInterval(); d > 0 {
		s.periodT = n.rt.SendInterval(ref, d, func() { s.perform(s.eng.PeriodicSync()) })
	}
	n.retimeFeed()
	for id := range n.members {
		s.OnNodeJoined(id)
	}
	return nil
}

// load restores the persisted state, or starts fresh.
func (s *Shard[S, V]) load(ctx context.Context, initial S) error {
	if s.persist == nil {
		return nil
	}
	obj, err := s.persist.Load(ctx)
	var pe *dstate.PersistError
	switch {
	case errors.As(err, &pe) && errors.Is(err, dstate.ErrDeserializationFailed):
		s.log.Warn("persisted state unreadable; starting empty with a new incarnation", "err", err, "stored", pe.Stored.String())
		s.eng.Reincarnate(initial, pe.Stored.Incarnation+1)
	case err != nil:
		// A registration, not a mutation: the error names the state and
		// the store's own cause (a Raft store says "no Raft leader yet"
		// or "lost quorum").
		return fmt.Errorf("node: register state %q: %w: load: %w", s.name, dstate.ErrPersistenceFailed, err)
	case obj != nil:
		s.eng.Restore(*obj, s.def.StorageVersion())
		s.log.Info("restored persisted state", "generation", obj.Generation.String())
	}
	b, err := s.def.EncodeState(s.eng.State().Value)
	if err != nil {
		return fmt.Errorf("node: encode state %q: %w", s.name, err)
	}
	s.lastSaved = b
	return nil
}

// StateName returns the state's name.
func (s *Shard[S, V]) StateName() string { return s.name }

// NodeID returns the ID of the node the shard runs on (the owner of the
// value Mutate changes).
func (s *Shard[S, V]) NodeID() dstate.NodeID { return s.n.ID() }

// OnNodeJoined forwards a join to the state's actor.
func (s *Shard[S, V]) OnNodeJoined(node dstate.NodeID) {
	s.post(func() { s.perform(s.eng.OnNodeJoined(node)) })
}

// OnNodeLeft forwards a leave to the state's actor.
func (s *Shard[S, V]) OnNodeLeft(node dstate.NodeID) {
	s.post(func() { s.eng.OnNodeLeft(node); s.checkWaiters(); s.touched(node) })
}

// failed forwards a membership failure to the state's actor; the queries
// waiting for the failed peer are released.
func (s *Shard[S, V]) failed(node dstate.NodeID) {
	s.post(func() { s.eng.OnNodeFailed(node); s.checkWaiters(); s.touched(node) })
}

func (s *Shard[S, V]) reaped(node dstate.NodeID) {
	s.post(func() { s.eng.ForgetDeparted(node); s.touched(node) })
}

// deliver posts an inbound message to the actor. The message itself is the
// mailbox entry (no closure is allocated per message: this is the hottest
// path of a receiving node); it is only read, so a feed may be posted to
// several states at once. ran reports whether the actor handled it before
// deliver returned (and holds no reference to it).
func (s *Shard[S, V]) deliver(m *dstate.WireMessage) (ran bool) {
	ran, err := s.send(m)
	if err != nil {
		s.n.stats.mailboxDrops.Add(1)
		s.log.Warn("state actor refused a message", "err", err)
	}
	return ran
}

// deliverOwned hands the actor a pooled message only this state receives
// (see inbound); ok reports whether the actor took it (else it is still the
// caller's).
func (s *Shard[S, V]) deliverOwned(in *inbound) (ok bool) {
	if s.parallel && in.msg.Kind == dstate.KindFullSnapshot && len(in.msg.Data) >= parallelDecodeMin && s.newer(&in.msg) {
		s.deliverDecoded(&in.msg)
		return false // decoded: the frame is the caller's again
	}
	if _, err := s.send(in); err != nil {
		s.n.stats.mailboxDrops.Add(1)
		s.log.Warn("state actor refused a message", "err", err)
		return false
	}
	return true
}

// runs implements shard: every state takes runs of deltas.
func (s *Shard[S, V]) runs() bool { return true }

// deliverRun hands the actor a run of deltas (see deltaRun).
func (s *Shard[S, V]) deliverRun(r *deltaRun) {
	s.n.stats.deltaRuns.Add(1)
	s.n.stats.deltasInRuns.Add(uint64(len(r.msgs)))
	if _, err := s.send(r); err != nil {
		s.n.stats.mailboxDrops.Add(uint64(len(r.msgs)))
		s.log.Warn("state actor refused a run of deltas", "deltas", len(r.msgs), "err", err)
		r.recycle()
	}
}

// parallelDecodeMin is the smallest snapshot ParallelDecode decodes before
// the actor: smaller ones cost less than the hand-off.
const parallelDecodeMin = 64 << 10

// decodedSnapshot is a snapshot whose view was decoded before the actor
// (see StateOptions.ParallelDecode); its message holds no byte of the frame.
type decodedSnapshot[V any] struct {
	msg  dstate.WireMessage
	view dstate.DecodedView[V]
}

// newer reports whether snapshot m is newer than the view held of its
// source (from any goroutine): a snapshot of a generation held, which the
// engine only takes as a confirmation, is not worth decoding.
func (s *Shard[S, V]) newer(m *dstate.WireMessage) bool {
	v, ok := s.eng.Views().Get(m.Source)
	return !ok || v.Generation.IsZero() || v.Generation.Less(m.Generation)
}

// deliverDecoded decodes m's view on the calling goroutine and hands the
// actor the result.
func (s *Shard[S, V]) deliverDecoded(m *dstate.WireMessage) {
	d := &decodedSnapshot[V]{msg: *m, view: s.eng.DecodeSnapshotView(m)}
	d.msg.Data = nil
	if _, err := s.send(d); err != nil {
		s.n.stats.mailboxDrops.Add(1)
		s.log.Warn("state actor refused a message", "err", err)
	}
}

// handle is the actor's handler: an inbound message, or work posted as a
// func.
func (s *Shard[S, V]) handle(msg any) {
	switch m := msg.(type) {
	case *inbound:
		s.handleWire(&m.msg)
		m.release(true)
	case *deltaRun:
		s.perform(s.eng.HandleDeltaRun(m.msgs))
		s.checkWaiters()
		s.touched(m.msgs[0].Source)
		m.recycle()
	case *decodedSnapshot[V]:
		s.perform(s.eng.HandleDecodedSnapshot(&m.msg, m.view))
		s.checkWaiters()
		s.touched(m.msg.Source)
	case *dstate.WireMessage:
		s.handleWire(m)
	case actorCall:
		m.run()
	default:
		msg.(func())()
	}
}

// handleWire handles an inbound message on the actor.
func (s *Shard[S, V]) handleWire(m *dstate.WireMessage) {
	s.perform(s.eng.HandleWire(m))
	s.checkWaiters()
	s.touched(m.Source)
}

func (s *Shard[S, V]) metrics() dstate.SyncMetrics { return s.eng.Metrics() }

func (s *Shard[S, V]) batchInterval() (time.Duration, bool) {
	st := s.eng.Config().SyncStrategy
	return st.BatchInterval(), st.PushMode == dstate.ActiveFeedLazyPull
}

func (s *Shard[S, V]) stop() {
	if s.periodT != nil {
		s.periodT.Cancel()
	}
	done := make(chan struct{})
	if s.ref.Send(func() {
		for _, t := range s.timers {
			t.Cancel()
		}
		s.eng.StopStreams()
		s.waiters = nil
		close(done)
	}) == nil {
		select {
		case <-done:
		case <-time.After(time.Second): // a wedged handler must not wedge Close
		}
	}
	s.ref.Stop()
	close(s.closed)
}

// post sends work to the actor; a full mailbox is counted and logged.
func (s *Shard[S, V]) post(fn func()) bool {
	if err := s.ref.Send(fn); err != nil {
		s.n.stats.mailboxDrops.Add(1)
		s.log.Warn("state actor refused a message", "err", err)
		return false
	}
	return true
}

// ask runs fn on the actor and waits for its result, ctx, or the actor's
// end. If ctx ends first, fn may still run later.
func ask[S, V, T any](ctx context.Context, s *Shard[S, V], fn func() T) (T, error) {
	var zero T
	ch := make(chan T, 1)
	if _, err := s.send(func() { ch <- fn() }); err != nil {
		if errors.Is(err, dstate.ErrActorStopped) {
			return zero, ErrClosed
		}
		return zero, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-s.closed:
		return zero, ErrClosed
	}
}

// perform executes engine actions (see shardActions). It runs on the actor.
func (s *Shard[S, V]) perform(acts []dstate.Action) {
	dstate.Dispatch(acts, (*shardActions[S, V])(s))
	// Dispatched and encoded: the engine's slice would otherwise keep a
	// streamed snapshot's chunks until its next call.
	clear(acts)
}

// noticeRejected logs, rate limited per peer, a change notice the engine
// rejected. It runs on the actor.
func (s *Shard[S, V]) noticeRejected(peer dstate.NodeID, c dstate.ChangeNotification) {
	if peer != c.Source {
		s.n.warnPeer(peer, "notice", "refused a change notice about another node than the sending peer", "notice", c.String())
		return
	}
	held := ""
	if v, ok := s.eng.Views().Get(peer); ok {
		held = v.Generation.String()
	}
	s.n.warnPeer(peer, "notice-ahead", "a change notice announced a generation its owner's answer did not have; the view is no longer marked stale",
		"state", s.name, "announced", c.Generation.String(), "answered", held)
}

// Mutate applies fn to the state with Default urgency and returns the new
// generation and view once the mutation is saved (when the state has
// persistence) and published. A failed save rolls the mutation back and
// returns a *dstate.MutationError (ErrPersistenceFailed). If fn or a
// callback of the state panics, the panic is recovered on the state's
// actor: the state and its generation stay as they were, nothing is
// published or saved, and the error is a *dstate.MutationError
// (ErrCallbackPanic) wrapping the *dstate.CallbackPanicError. A mutation
// whose result would encode over the node's Config.Limits (MaxSnapshot, or
// MaxDelta for a delta) is undone likewise and returns a
// *dstate.SizeLimitError (dstate.ErrStateTooLarge) naming the state, the
// size and the limit: peers would refuse it. If ctx ends first, the
// mutation may still be applied.
func (s *Shard[S, V]) Mutate(ctx context.Context, fn func(*S)) (dstate.Generation, V, error) {
	return s.MutateWith(ctx, dstate.Default, fn)
}

// MutateWith is Mutate with an explicit urgency.
func (s *Shard[S, V]) MutateWith(ctx context.Context, urgency dstate.SyncUrgency, fn func(*S)) (dstate.Generation, V, error) {
	c := s.calls.Get().(*mutateCall[S, V])
	c.fn, c.urgency = fn, urgency
	return s.invokeMutation(ctx, c, &c.mutation, &s.calls)
}

// MutateDelta applies fn, whose returned change is projected into the view
// delta that replicates; urgency comes from the definition's SyncUrgency.
// See [Shard.Mutate] for persistence and errors.
func (d *DeltaShard[S, V, D, C]) MutateDelta(ctx context.Context, fn func(*S) C) (dstate.Generation, V, error) {
	c := d.deltaCalls.Get().(*deltaCall[S, V, D, C])
	c.fn = fn
	return d.invokeMutation(ctx, c, &c.mutation, &d.deltaCalls)
}

// A mutation is handed to the actor as a pooled call object rather than
// closures and a reply channel: on the hot path (the actor idle, the call
// run inline by SendInline) a mutation then allocates nothing of its own.

// mutation is what every kind of mutation call shares: its context, its
// answer and the channel that says it ran.
type mutation[V any] struct {
	ctx  context.Context
	res  mutateResult[V]
	done chan struct{} // capacity 1: the call ran and res is set
}

// actorCall is a mailbox entry the actor runs (see Shard.handle).
type actorCall interface{ run() }

// preparer is the first half of a mutation, run on the actor.
type preparer[S any] interface {
	prepare() (*dstate.StateObject[S], error)
}

// mutateCall is a Mutate or MutateWith call.
type mutateCall[S, V any] struct {
	mutation[V]
	s       *Shard[S, V]
	fn      func(*S)
	urgency dstate.SyncUrgency
}

func (c *mutateCall[S, V]) prepare() (*dstate.StateObject[S], error) {
	return c.s.eng.TryPrepare(c.fn, c.urgency)
}

func (c *mutateCall[S, V]) run() {
	c.res = c.s.runMutation(c.ctx, c)
	c.done <- struct{}{}
}

// deltaCall is a MutateDelta call.
type deltaCall[S, V, D, C any] struct {
	mutation[V]
	d  *DeltaShard[S, V, D, C]
	fn func(*S) C
}

func (c *deltaCall[S, V, D, C]) prepare() (*dstate.StateObject[S], error) {
	obj, _, err := c.d.de.TryPrepareDelta(c.fn)
	return obj, err
}

func (c *deltaCall[S, V, D, C]) run() {
	c.res = c.d.runMutation(c.ctx, c)
	c.done <- struct{}{}
}

// invokeMutation hands call (whose mutation is m) to the actor and waits
// for its answer, ctx or the actor's end. A call that ran goes back to
// pool; one still queued when ctx ends is left to the collector (it may
// still run: the mutation may still be applied).
func (s *Shard[S, V]) invokeMutation(ctx context.Context, call actorCall, m *mutation[V], pool *sync.Pool) (dstate.Generation, V, error) {
	m.ctx = ctx
	ran, err := s.send(call)
	if err != nil {
		var zero V
		if errors.Is(err, dstate.ErrActorStopped) {
			return dstate.Generation{}, zero, ErrClosed
		}
		return dstate.Generation{}, zero, err
	}
	answered := false
	if ran { // ran on this goroutine: the answer is there (a cheap receive)
		select {
		case <-m.done:
			answered = true
		default:
		}
	}
	if !answered {
		select {
		case <-m.done:
		case <-ctx.Done():
			var zero V
			return dstate.Generation{}, zero, ctx.Err()
		case <-s.closed:
			var zero V
			return dstate.Generation{}, zero, ErrClosed
		}
	}
	r := m.res
	m.ctx, m.res = nil, mutateResult[V]{}
	pool.Put(call)
	return r.gen, r.view, r.err
}

type mutateResult[V any] struct {
	gen  dstate.Generation
	view V
	err  error
}

// runMutation runs a mutation on the actor: prepare, save (when the state
// has persistence), commit and publish.
func (s *Shard[S, V]) runMutation(ctx context.Context, p preparer[S]) (r mutateResult[V]) {
	// The caller is answered whatever panics: the engine recovers the
	// state's callbacks itself, this catches the rest.
	defer func() {
		if v := recover(); v != nil {
			s.rollback()
			r = s.panicked(dstate.RecoveredPanic(dstate.CallbackHost, s.name, v))
		}
	}()
	obj, perr := p.prepare()
	if errors.Is(perr, dstate.ErrStateTooLarge) {
		return mutateResult[V]{gen: s.eng.Generation(), err: perr}
	}
	if perr != nil {
		return s.panicked(perr)
	}
	if s.persist != nil {
		// Encoded before the save, so that a panicking encoder leaves
		// nothing saved.
		b, eerr := s.encodeState(obj.Value)
		if errors.Is(eerr, dstate.ErrCallbackPanic) {
			s.rollback()
			return s.panicked(eerr)
		}
		save := func() error { return s.persist.Save(ctx, obj, s.eng.PreparedDelta()) }
		if serr := guarded(s.name, dstate.CallbackPersistence, save); serr != nil {
			s.rollback()
			if errors.Is(serr, dstate.ErrCallbackPanic) {
				return s.panicked(serr)
			}
			s.refence(serr)
			return mutateResult[V]{gen: s.eng.Generation(), err: &dstate.MutationError{Kind: dstate.ErrPersistenceFailed, State: s.name, Err: serr}}
		}
		if eerr == nil {
			s.lastSaved = b
			s.eng.KeepStateEncoding(b)
		}
	}
	res := s.eng.Commit()
	s.perform(res.Actions)
	s.touched(s.n.id)
	return mutateResult[V]{gen: res.Generation, view: res.View}
}

// refence handles a failed save that says the store holds a generation at
// or past ours: a save whose outcome was unknown did land (or another
// process wrote under this node's ID). The stored object is the committed
// truth, and readers may have seen it, so the state adopts it and
// republishes it. When the store cannot be read now (no leader, lost
// quorum, a timeout) the state stays as it is: its next save is fenced
// again and tries again to adopt, so a landed save is never overwritten by
// a value that did not build on it. Only a stored object this node can
// never read (ErrDeserializationFailed: corrupt, or a storage version it
// does not know) makes the state move to a new incarnation above it, as at
// start. It runs on the actor.
func (s *Shard[S, V]) refence(err error) {
	var pe *dstate.PersistError
	if !errors.As(err, &pe) || pe.Stored.IsZero() || pe.Stored.Less(s.eng.Generation()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.eng.Config().EffectivePullTimeout())
	defer cancel()
	obj, lerr := s.persist.Load(ctx)
	if lerr == nil && obj != nil && !obj.Generation.Less(pe.Stored) {
		b, eerr := s.def.EncodeState(obj.Value)
		if eerr == nil {
			s.eng.Restore(*obj, s.def.StorageVersion())
			s.lastSaved = b
			if msg, ok := s.eng.SnapshotMessage(); ok {
				s.perform([]dstate.Action{{Kind: dstate.ActionBroadcast, Message: msg}})
			}
			s.log.Warn("the store holds a newer generation than this node published (a save of unknown outcome landed); adopted it",
				"generation", obj.Generation.String())
			return
		}
		lerr = &dstate.PersistError{Kind: dstate.ErrDeserializationFailed, Op: "load", Stored: obj.Generation, Err: eerr}
	}
	if !errors.Is(lerr, dstate.ErrDeserializationFailed) {
		s.log.Warn("the store holds a newer generation than this node published and cannot be read now; the state keeps its generation and its next write tries again",
			"stored", pe.Stored.String(), "generation", s.eng.Generation().String(), "load_err", lerr)
		return
	}
	s.eng.Reincarnate(s.eng.State().Value, pe.Stored.Incarnation+1)
	s.log.Warn("the store holds a newer generation than this node published that it cannot decode; continuing with a new incarnation",
		"stored", pe.Stored.String(), "generation", s.eng.Generation().String(), "load_err", lerr)
}

// rollback undoes the prepared mutation from the checkpoint the engine
// took before it (the value of the last save, for a persisted state); it
// runs on the actor.
func (s *Shard[S, V]) rollback() {
	if err := s.eng.Rollback(); err != nil {
		s.log.Error("cannot restore the state from before the failed mutation", "err", err)
	}
}

// panicked is the answer to a mutation that a callback's panic undid.
func (s *Shard[S, V]) panicked(err error) mutateResult[V] {
	return mutateResult[V]{gen: s.eng.Generation(), err: &dstate.MutationError{Kind: dstate.ErrCallbackPanic, State: s.name, Err: err}}
}

// encodeState encodes a value of the state, returning a panic as a
// *dstate.CallbackPanicError.
func (s *Shard[S, V]) encodeState(v S) (b []byte, err error) {
	err = guarded(s.name, dstate.CallbackEncodeState, func() error {
		var eerr error
		b, eerr = s.def.EncodeState(v)
		return eerr
	})
	return b, err
}

// Views returns the current views of every node without blocking (see
// dstate.Views).
func (s *Shard[S, V]) Views() dstate.Views[V] { return s.eng.Views() }

// QueryLocal calls fn with the current views; it never blocks.
func (s *Shard[S, V]) QueryLocal(fn func(dstate.Views[V])) { fn(s.eng.Views()) }

// Generation returns the local state's current generation.
func (s *Shard[S, V]) Generation() dstate.Generation {
	v, _ := s.eng.Views().Get(s.n.id)
	return v.Generation
}

// Metrics returns the state's engine counters.
func (s *Shard[S, V]) Metrics() dstate.SyncMetrics { return s.eng.Metrics() }

// FailedPeers returns, sorted, the peers this state takes for failed and
// why (see dstate.Engine.FailedPeers): queries neither pull nor wait for
// them. It never blocks; the caller must not modify the slice.
func (s *Shard[S, V]) FailedPeers() []dstate.StalePeer { return s.eng.FailedPeers() }

func (s *Shard[S, V]) health(ctx context.Context, maxStaleness time.Duration) (dstate.EngineHealth, error) {
	return ask(ctx, s, func() dstate.EngineHealth { return s.eng.Health(maxStaleness) })
}

// Health returns the state's health at maxStaleness.
func (s *Shard[S, V]) Health(ctx context.Context, maxStaleness time.Duration) (dstate.EngineHealth, error) {
	return s.health(ctx, maxStaleness)
}

// PeerStatuses returns the sync status of every peer.
func (s *Shard[S, V]) PeerStatuses(ctx context.Context) ([]dstate.PeerStatus, error) {
	return ask(ctx, s, func() []dstate.PeerStatus { return s.eng.PeerStatuses() })
}

// Config returns the state's effective configuration.
func (s *Shard[S, V]) Config() dstate.StateConfig { return s.eng.Config() }

// QueryDurable is the query level above Query: a linearizable read of every
// node's last committed state, straight from the cluster's store (Raft),
// bypassing the replicated views. fn gets the decoded objects by node. It
// fails with ErrNotDurable unless the state's durability is shared by the
// cluster, and with the store's *dstate.PersistError when it cannot read.
func (s *Shard[S, V]) QueryDurable(ctx context.Context, fn func(map[dstate.NodeID]*dstate.StateObject[S])) error {
	r, ok := s.store.(dstate.EnvelopeReader)
	if !ok || s.eng.Config().Durability != dstate.Raft {
		return fmt.Errorf("%w: state %q has %s durability", ErrNotDurable, s.name, s.eng.Config().Durability)
	}
	envs, err := r.LoadAllEnvelopes(ctx, s.name)
	if err != nil {
		return err
	}
	out := make(map[dstate.NodeID]*dstate.StateObject[S], len(envs))
	for _, env := range envs {
		v, err := dstate.DecodeStored(s.def, env.Data, env.StorageVersion)
		if err != nil {
			return &dstate.PersistError{Kind: dstate.ErrDeserializationFailed, Op: "load", Stored: env.Generation,
				Err: fmt.Errorf("state %q of node %q: %w", s.name, env.Node, err)}
		}
		out[env.Node] = &dstate.StateObject[S]{Generation: env.Generation, StorageVersion: env.StorageVersion, Value: v,
			CreatedUnixMs: env.CreatedUnixMs, ModifiedUnixMs: env.ModifiedUnixMs}
	}
	fn(out)
	return nil
}
