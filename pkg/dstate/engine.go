package dstate

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync/atomic"
	"time"
)

// Codec holds the functions an engine needs to project, encode and decode
// one state type. They are called from the engine's owner goroutine only.
// It is the engine's function table, not a contract a state implements:
// [SimpleEngineConfig] and [DeltaEngineConfig] fill it from a definition
// ([DistributedState], [DeltaDistributedState]).
type Codec[S, V any] struct {
	// Project computes the public view of the state. Required.
	Project func(state *S) V
	// EncodeView encodes a view for a FullSnapshot. Required.
	EncodeView func(V) ([]byte, error)
	// DecodeView decodes a FullSnapshot's view in the given wire version;
	// ErrUnknownVersion triggers the VersionMismatchPolicy. Required.
	DecodeView func(data []byte, wireVersion uint32) (V, error)
	// ApplyDelta decodes a DeltaUpdate and applies it to view. Nil means
	// the state has no deltas: inbound deltas are answered with a
	// RequestSnapshot, and mutations broadcast snapshots.
	ApplyDelta func(view V, data []byte, wireVersion uint32) (V, error)
	// EncodeState and DecodeState encode the owned value in the storage
	// version, as the state's persistence does. Optional: the engine uses
	// them to restore the value after a mutation panicked when a copy of
	// the value cannot (it holds maps, slices, pointers or interfaces).
	// Without them, such a value keeps what the panicking mutation wrote;
	// its generation is restored and nothing is published all the same.
	EncodeState func(S) ([]byte, error)
	DecodeState func(data []byte, storageVersion uint32) (S, error)
	// ViewIsState says that the view is the value itself and EncodeView
	// encodes it as EncodeState does (simple states): the own snapshot's
	// encoding then doubles as the value's checkpoint.
	ViewIsState bool
	// EncodeViewChunks and NewViewDecoder stream snapshots in chunks (see
	// [ChunkedViewCodec]). Optional, both or neither: without them every
	// snapshot travels whole.
	EncodeViewChunks func(v V, chunkSize int, emit func([]byte) error) error
	NewViewDecoder   func(wireVersion uint32) (ViewDecoder[V], error)
}

// EngineConfig configures an [Engine].
type EngineConfig[S, V any] struct {
	Name           string // state name, unique in the cluster
	Node           NodeID // the local node
	WireVersion    uint32 // version stamped on outbound snapshots and deltas
	StorageVersion uint32 // version stamped on the StateObject
	State          StateConfig
	Clock          Clock
	Codec          Codec[S, V]
}

// Validate reports the first missing or invalid field; it changes nothing.
func (c *EngineConfig[S, V]) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("dstate: EngineConfig.Name is empty")
	case c.Node == "":
		return errors.New("dstate: EngineConfig.Node is empty")
	case c.Clock == nil:
		return errors.New("dstate: EngineConfig.Clock is nil")
	case c.Codec.Project == nil:
		return errors.New("dstate: EngineConfig.Codec.Project is nil")
	case c.Codec.EncodeView == nil:
		return errors.New("dstate: EngineConfig.Codec.EncodeView is nil")
	case c.Codec.DecodeView == nil:
		return errors.New("dstate: EngineConfig.Codec.DecodeView is nil")
	}
	return c.State.Validate()
}

// Engine is the sans-IO replication state machine of one state type on one
// node: it owns the node's StateObject and every node's view. Each method
// returns the actions its host must perform (see [Action]); the engine never
// blocks, starts goroutines, reads the time except through its Clock, or
// touches the network.
//
// An Engine has a single owner: all methods but Views, Metrics, Name and
// Node must be called from one goroutine at a time. Views and Metrics are
// safe from any goroutine. The returned action slices are valid until the
// next call on the engine.
type Engine[S, V any] struct {
	name      string
	self      NodeID
	wireVer   uint32
	cfg       StateConfig
	clock     Clock
	codec     Codec[S, V]
	obj       StateObject[S]
	views     viewMap[V]
	wallOfNow bool // the clock's Now carries its wall clock (WallClock)
	// anchored: the clock is the SystemClock, read through now; anchor is
	// its last full reading.
	anchored  bool
	runDefer  bool // the delta being handled may leave its view to the run (see runView)
	anchor    time.Time
	departed  map[NodeID]struct{}
	orphans   map[NodeID]*peerState // sync records of peers that have no view (see peer)
	peerErrs  map[NodeID]peerErr    // failures and last error of each peer whose record has failures (see clearFailures)
	pulls     map[NodeID]pull       // the outstanding snapshot request of each peer that has one (see requestSnapshot)
	gapsOver  map[NodeID]uint64     // age gaps beyond a record's 16-bit count (see gap)
	syncAside map[NodeID]int64      // the last accepted update of peers whose view was dropped since (see lastSync)
	attempts  map[NodeID]int64      // the last message of peers whose last message was not applied (see attempted)
	att       attempt               // the arrival of the message being handled (see attempted)
	m         metrics
	acts      []Action
	slab      []StateViewObject[V]
	// runView is the view a delta of a run left unpublished (see
	// HandleDeltaRun), for the next delta of the run to overwrite, and
	// runSlot the slot it goes to (see publishRun).
	runView    *StateViewObject[V]
	runSlot    *viewSlot[V]
	ownEnc     []byte // encoding of the own view at ownEncGen
	ownEncGen  Generation
	ownEncOK   bool
	pend       pending[V]
	pullPeriod time.Duration
	epoch      time.Time // origin of peerState's compact instants
	// The checkpoint a mutation that panics is undone from (see
	// checkpoint): a copy of the value when copyOK, else its encoding ckpt
	// of generation ckptGen in version ckptVer.
	copyOK  bool
	prevVal S
	ckpt    []byte
	ckptVer uint32
	ckptGen Generation
	ckptOK  bool

	size sizeGuard   // see SetSizeLimits
	st   *streams[V] // snapshot streams (stream.go); nil until first used
	// A snapshot's view decoded off the engine's goroutine, while
	// HandleDecodedSnapshot runs (predecode.go).
	pre    DecodedView[V]
	hasPre bool

	failedList atomic.Pointer[[]StalePeer] // see FailedPeers
	anyFailed  bool                        // failedList is not empty
}

type pending[V any] struct {
	active       bool
	prevGen      Generation
	prevMod      int64
	hasView      bool
	view         V
	deltaData    []byte
	hasDelta     bool
	deltaScratch bool // deltaData is the DeltaEngine's reused buffer
	urgency      SyncUrgency
	haveUrgent   bool
	at           time.Time // when begin read the clock, if wallOfNow
	snap         []byte    // the prepared view's encoding, when Commit will send a snapshot or fitSize measured it
	hasSnap      bool
	sizeBound    int  // the prepared snapshot's length, or an estimate from above (see fitSize)
	sized        bool // sizeBound is set
}

// NewEngine returns an engine owning initial as a fresh incarnation: its
// generation is (clock.UnixMilli(), 0). Use [Engine.Restore] to continue a
// persisted state instead.
func NewEngine[S, V any](cfg EngineConfig[S, V], initial S) (*Engine[S, V], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := cfg.Clock.UnixMilli()
	inc := uint64(1)
	if now > 0 {
		inc = uint64(now)
	}
	e := &Engine[S, V]{
		name: cfg.Name, self: cfg.Node, wireVer: cfg.WireVersion, cfg: cfg.State, clock: cfg.Clock, codec: cfg.Codec,
		departed: make(map[NodeID]struct{}), orphans: make(map[NodeID]*peerState),
		obj: StateObject[S]{Generation: Generation{Incarnation: inc}, StorageVersion: cfg.StorageVersion, Value: initial, CreatedUnixMs: now, ModifiedUnixMs: now},
	}
	e.pullPeriod = cfg.State.EffectivePullTimeout()
	e.epoch = cfg.Clock.Now()
	e.views.self = cfg.Node
	ep := e.epoch
	e.views.cur.ep = &ep // a copy: a reader's Views handle does not keep the engine alive
	e.copyOK = copyRestores(reflect.TypeFor[S]())
	e.wallOfNow = carriesWall(cfg.Clock)
	if _, sys := cfg.Clock.(SystemClock); sys {
		e.anchored, e.anchor = true, e.epoch
	}
	view, err := e.project(&e.obj.Value)
	if err != nil {
		return nil, err
	}
	e.publishOwn(view, e.now())
	return e, nil
}

// anchorEvery is how old the SystemClock's full reading may get before now
// takes another.
const anchorEvery = 100 * time.Millisecond

// now reads the engine's clock on the paths that handle messages and
// mutations. A full reading of the SystemClock (the wall clock and the
// monotonic clock) costs two calls into the kernel's clock page; there it
// reads only the monotonic clock and carries the wall clock forward from a
// full reading at most anchorEvery old, so a step of the wall clock shows
// within anchorEvery. Freshness (Views.SyncedAt) uses the monotonic
// reading, which is exact. Other clocks are read as they are.
func (e *Engine[S, V]) now() time.Time {
	if !e.anchored {
		return e.clock.Now()
	}
	if d := (SystemClock{}).since(e.anchor); d >= 0 && d < anchorEvery {
		return e.anchor.Add(d)
	}
	e.anchor = e.clock.Now()
	return e.anchor
}

// wallMs returns the wall clock in milliseconds at now, a time this call
// already read from the clock. A WallClock's Now (SystemClock's) carries
// the wall clock, so it is not read again (each read costs tens of
// nanoseconds); other clocks are asked, as their Now and UnixMilli may
// differ.
func (e *Engine[S, V]) wallMs(now time.Time) int64 {
	if e.wallOfNow {
		return now.UnixMilli()
	}
	return e.clock.UnixMilli()
}

// own returns the published own view.
func (e *Engine[S, V]) own() *StateViewObject[V] { return e.views.get(e.self) }

// Name returns the state name.
func (e *Engine[S, V]) Name() string { return e.name }

// Node returns the local node ID.
func (e *Engine[S, V]) Node() NodeID { return e.self }

// Config returns the state's configuration.
func (e *Engine[S, V]) Config() StateConfig { return e.cfg }

// WireVersion returns the version this engine stamps on what it sends.
func (e *Engine[S, V]) WireVersion() uint32 { return e.wireVer }

// State returns the owned state object. The caller must not modify it and
// must not keep it across calls that mutate the engine.
func (e *Engine[S, V]) State() *StateObject[S] { return &e.obj }

// Generation returns the owned state's generation.
func (e *Engine[S, V]) Generation() Generation { return e.obj.Generation }

// Views returns a lock-free read handle on every node's view (see [Views]).
func (e *Engine[S, V]) Views() Views[V] { return e.views.views() }

// Metrics returns a snapshot of the counters; safe from any goroutine.
func (e *Engine[S, V]) Metrics() SyncMetrics { return e.m.snapshot() }

// Restore replaces the owned state with a persisted object and keeps its
// generation, so peers see the usual order. The storage version is set to
// the engine's. Use it at start, before the engine has sent anything.
func (e *Engine[S, V]) Restore(obj StateObject[S], storageVersion uint32) {
	obj.StorageVersion = storageVersion
	e.obj = obj
	e.ownEncOK, e.ckptOK = false, false
	e.publishOwn(e.codec.Project(&e.obj.Value), e.now())
}

// Reincarnate starts a new incarnation with the given value: its
// incarnation is the clock's wall milliseconds, or atLeast when that is
// larger, and its age is zero. Hosts use it when a persisted state cannot be
// read, passing the stored incarnation + 1 so the new lifetime orders after
// the old one.
func (e *Engine[S, V]) Reincarnate(value S, atLeast uint64) {
	now := e.clock.UnixMilli()
	inc := uint64(1)
	if now > 0 {
		inc = uint64(now)
	}
	inc = max(inc, atLeast)
	e.obj = StateObject[S]{Generation: Generation{Incarnation: inc}, StorageVersion: e.obj.StorageVersion, Value: value, CreatedUnixMs: now, ModifiedUnixMs: now}
	e.ownEncOK, e.ckptOK = false, false
	e.publishOwn(e.codec.Project(&e.obj.Value), e.now())
}

// Mutate applies fn to the owned state, advances the age by one and returns
// the new generation, the new own view and the actions that publish it. A
// simple mutation always publishes full snapshots (see the package doc).
func (e *Engine[S, V]) Mutate(fn func(*S), urgency SyncUrgency) MutateResult[V] {
	e.Prepare(fn, urgency)
	return e.Commit()
}

// MutateResult is what a committed mutation produced.
type MutateResult[V any] struct {
	Generation Generation
	View       V
	Actions    []Action
}

// Prepare is the first half of a two-phase mutation, for hosts that persist
// before publishing: it applies fn to the owned state and advances the
// generation but publishes nothing (no view, no action). The returned
// object is what must be saved. It must be followed by exactly one Commit,
// or by Abort or Rollback when the save failed.
//
// It is [Engine.TryPrepare] for hosts that let a panic through: when fn (or
// a callback of the state) panics, the mutation is undone as TryPrepare
// does and Prepare panics with the *CallbackPanicError; a mutation over the
// size limits is undone and Prepare panics with the *SizeLimitError.
func (e *Engine[S, V]) Prepare(fn func(*S), urgency SyncUrgency) *StateObject[S] {
	obj, err := e.TryPrepare(fn, urgency)
	if err != nil {
		panic(err)
	}
	return obj
}

// TryPrepare is the first half of a two-phase mutation (see
// [Engine.Prepare]) that recovers panics. It runs fn, projects the view
// and, when Commit will send a snapshot, encodes it, so that Commit calls
// no callback of the state. If any of these panics, the mutation is
// undone: the owned value is restored from the checkpoint taken before fn
// ran (see [Codec.EncodeState]), the generation and modified time go back,
// nothing is pending, and the panic is returned as a *CallbackPanicError
// (then no Commit follows). The checkpoint costs nothing when the value
// holds no references, or when the engine already has an encoding of it.
//
// A mutation whose result would encode over the size limits (see
// [Engine.SetSizeLimits]) is undone the same way and returned as a
// *SizeLimitError (ErrStateTooLarge): peers would refuse its snapshot, so
// it is refused at the owner. A simple state's view is encoded here for
// that check, and the encoding is what Commit then sends or keeps.
func (e *Engine[S, V]) TryPrepare(fn func(*S), urgency SyncUrgency) (obj *StateObject[S], err error) {
	if err := e.checkpoint(); err != nil {
		return nil, err
	}
	e.begin(urgency)
	stage := stageMutation
	defer func() {
		if r := recover(); r != nil {
			obj, err = nil, e.undoPanic(stage, r)
		}
	}()
	fn(&e.obj.Value)
	stage = stageProjectView
	e.pend.view, e.pend.hasView = e.codec.Project(&e.obj.Value), true
	stage = stageEncodeView
	if err := e.prepareSnapshot(); err != nil {
		return nil, err
	}
	return &e.obj, nil
}

// prepareSnapshot encodes the prepared view when Commit will send it as a
// snapshot (a panicking encoder then undoes the mutation before anything is
// saved), then checks the result against the size limits (fitSize): a
// mutation over them is undone here and its *SizeLimitError returned. An
// encoding error is left for Commit to meet and count.
func (e *Engine[S, V]) prepareSnapshot() error {
	p := &e.pend
	if !p.hasDelta || e.codec.ApplyDelta == nil {
		switch e.resolve(p.urgency) {
		case decisionBroadcast, decisionDelayed:
			if b, err := e.codec.EncodeView(p.view); err == nil {
				p.snap, p.hasSnap = b, true
			}
		}
	}
	if err := e.fitSize(); err != nil {
		return e.refuseSize(err)
	}
	return nil
}

func (e *Engine[S, V]) begin(urgency SyncUrgency) {
	e.pend = pending[V]{active: true, prevGen: e.obj.Generation, prevMod: e.obj.ModifiedUnixMs, urgency: urgency}
	e.obj.Generation.Age++
	if e.wallOfNow {
		// One clock read serves the modified time here and the own view's
		// SyncedAt at Commit.
		e.pend.at = e.now()
		e.obj.ModifiedUnixMs = e.pend.at.UnixMilli()
	} else {
		e.obj.ModifiedUnixMs = e.clock.UnixMilli()
	}
}

// Abort undoes a prepared mutation: restored (the state as it was before,
// typically decoded from the last save) becomes the owned value again and
// the generation goes back. Nothing was published.
func (e *Engine[S, V]) Abort(restored S) {
	if !e.pend.active {
		return
	}
	e.obj.Value = restored
	e.obj.Generation = e.pend.prevGen
	e.obj.ModifiedUnixMs = e.pend.prevMod
	e.pend = pending[V]{}
}

// Commit publishes a prepared mutation: the own view is updated and the
// actions that carry the change are returned according to the urgency and
// the push mode:
//
//	urgency \ push   ActivePush   ActiveFeedLazyPull   none
//	Immediate        broadcast    broadcast            broadcast
//	Default          broadcast    notify (feed)        nothing
//	Delayed(d)       after d      after d              after d
//	Suppress         nothing      nothing              nothing
//
// A broadcast is a delta when the mutation carried one, else a snapshot.
func (e *Engine[S, V]) Commit() MutateResult[V] {
	e.acts = e.acts[:0]
	if !e.pend.active {
		return MutateResult[V]{Generation: e.obj.Generation}
	}
	p := &e.pend
	var view V
	if p.hasView {
		view = p.view
	} else {
		view = e.codec.Project(&e.obj.Value)
	}
	at := p.at
	if at.IsZero() {
		at = e.now()
	}
	e.publishOwn(view, at)
	if p.hasSnap {
		e.ownEnc, e.ownEncGen, e.ownEncOK = p.snap, e.obj.Generation, true
	}
	if p.sized {
		e.size.note(e.obj.Generation, p.sizeBound)
	}
	e.m.totalMutations.Add(1)
	useDelta := p.hasDelta && e.codec.ApplyDelta != nil
	switch e.resolve(p.urgency) {
	case decisionBroadcast:
		if useDelta {
			e.acts = append(e.acts, Action{Kind: ActionBroadcast, Message: e.deltaMessage(p.deltaData)})
			e.m.deltasSent.Add(1)
		} else if msg, ok := e.ownSnapshot(); ok {
			e.acts = append(e.acts, Action{Kind: ActionBroadcast, Message: msg})
		}
	case decisionDelayed:
		e.m.delayed.Add(1)
		if useDelta {
			e.acts = append(e.acts, Action{Kind: ActionScheduleDelayed, Delay: p.urgency.Delay, Message: e.deltaMessage(p.deltaData)})
			e.m.deltasSent.Add(1)
		} else if msg, ok := e.ownSnapshot(); ok {
			e.acts = append(e.acts, Action{Kind: ActionScheduleDelayed, Delay: p.urgency.Delay, Message: msg})
		}
	case decisionNotify:
		e.acts = append(e.acts, Action{Kind: ActionNotify, Notice: ChangeNotification{State: e.name, Source: e.self, Generation: e.obj.Generation}})
		e.m.noticesSent.Add(1)
	case decisionSuppress:
		e.m.deltasSuppressed.Add(1)
	}
	if p.urgency.Kind == UrgencyImmediate {
		e.m.immediate.Add(1)
	}
	e.pend = pending[V]{}
	return MutateResult[V]{Generation: e.obj.Generation, View: view, Actions: e.acts}
}

type decision uint8

const (
	decisionSuppress decision = iota
	decisionBroadcast
	decisionDelayed
	decisionNotify
)

func (e *Engine[S, V]) resolve(u SyncUrgency) decision {
	switch u.Kind {
	case UrgencyImmediate:
		return decisionBroadcast
	case UrgencyDelayed:
		return decisionDelayed
	case UrgencySuppress:
		return decisionSuppress
	}
	switch e.cfg.SyncStrategy.PushMode {
	case ActivePush:
		return decisionBroadcast
	case ActiveFeedLazyPull:
		return decisionNotify
	}
	return decisionSuppress
}

func (e *Engine[S, V]) deltaMessage(data []byte) WireMessage {
	return WireMessage{
		Kind: KindDeltaUpdate, State: e.name, Source: e.self, Generation: e.obj.Generation, WireVersion: e.wireVer,
		CreatedUnixMs: e.obj.CreatedUnixMs, ModifiedUnixMs: e.obj.ModifiedUnixMs, SentUnixMs: e.obj.ModifiedUnixMs, Data: data,
	}
}

// ownSnapshot builds a FullSnapshot of the published own view, encoding it
// once per publication. While a mutation is prepared but not committed the
// snapshot still carries the published view, never the prepared one.
func (e *Engine[S, V]) ownSnapshot() (WireMessage, bool) {
	own := e.own()
	if own == nil {
		return WireMessage{}, false
	}
	if !e.ownEncOK || e.ownEncGen != own.Generation {
		b, err := e.encodeView(own.Value)
		if err != nil {
			e.m.encodeFailures.Add(1)
			return WireMessage{}, false
		}
		e.ownEnc, e.ownEncGen, e.ownEncOK = b, own.Generation, true
		if own.Generation == e.obj.Generation {
			e.size.note(own.Generation, len(b))
		}
	}
	e.m.snapshotsSent.Add(1)
	return WireMessage{
		Kind: KindFullSnapshot, State: e.name, Source: e.self, Generation: own.Generation, WireVersion: e.wireVer,
		CreatedUnixMs: e.obj.CreatedUnixMs, ModifiedUnixMs: own.ModifiedUnixMs, SentUnixMs: e.clock.UnixMilli(), Data: e.ownEnc,
	}, true
}

// viewSlab is the number of view objects newView allocates at once.
const viewSlab = 4

// newView returns a zeroed object from a slab, so that publishing a view
// costs a fraction of an allocation. Hot paths set its fields one by one:
// assigning a whole struct literal copies it through a temporary with a
// bulk write barrier, which costs tens of nanoseconds while the GC runs.
//
// A slab stays live while any of its objects is a current view, so the
// views of peers updated at different times keep the replaced objects
// beside them alive: with views replaced at random, a slab of k objects
// holds about H(k) (1 + 1/2 + … + 1/k) objects per current view. Slabs of
// 4 (2.1 per view; 256 B with an 8-byte value, a size class, no rounding)
// rather than 16 (3.4) cost no measurable time: the allocations are more,
// their bytes fewer.
func (e *Engine[S, V]) newView() *StateViewObject[V] {
	if len(e.slab) == 0 {
		e.slab = make([]StateViewObject[V], viewSlab)
	}
	v := &e.slab[0]
	e.slab = e.slab[1:]
	return v
}

func (e *Engine[S, V]) publishOwn(view V, now time.Time) {
	v := e.newView()
	v.Generation, v.WireVersion, v.Value = e.obj.Generation, e.wireVer, view
	v.ModifiedUnixMs, v.syncedNs = e.obj.ModifiedUnixMs, e.since(now)
	e.views.put(e.self, v)
	e.ownEncOK = false
}

// PeriodicInterval returns the periodic full-sync interval, or 0 if none.
func (e *Engine[S, V]) PeriodicInterval() time.Duration {
	return e.cfg.SyncStrategy.PeriodicFullSync
}

// PeriodicSync returns a broadcast of the own snapshot when the strategy has
// a periodic full sync, else nothing. Hosts call it every PeriodicInterval.
func (e *Engine[S, V]) PeriodicSync() []Action {
	e.acts = e.acts[:0]
	if e.cfg.SyncStrategy.PeriodicFullSync <= 0 {
		return nil
	}
	if msg, ok := e.ownSnapshot(); ok {
		e.acts = append(e.acts, Action{Kind: ActionBroadcast, Message: msg})
	}
	return e.acts
}

// SnapshotMessage returns a FullSnapshot of the own view (for hosts that
// push it outside the protocol's actions, e.g. to a newly reachable peer).
func (e *Engine[S, V]) SnapshotMessage() (WireMessage, bool) { return e.ownSnapshot() }

// OnNodeJoined records a joined node: it is no longer departed, gets a stale
// placeholder view if it has none, and is sent the own snapshot (both sides
// do this, so the exchange is bidirectional). Joining self does nothing.
func (e *Engine[S, V]) OnNodeJoined(node NodeID) []Action {
	e.acts = e.acts[:0]
	if node == e.self || node == "" {
		return nil
	}
	delete(e.departed, node)
	if e.views.get(node) == nil {
		v := e.newView()
		*v = StateViewObject[V]{syncedNs: e.since(e.now()), Pending: placeholderPending}
		e.views.put(node, v)
	}
	if p := e.peer(node); p.flags&(peerFailed|peerUnresponsive) != 0 {
		e.revive(node, p)
	}
	e.sendOwn(node, false)
	return e.acts
}

// placeholderPending marks a joined peer's placeholder as stale until its
// first snapshot arrives.
var placeholderPending = Generation{Incarnation: 0, Age: 1}

// OnNodeLeft drops a node's view and marks it departed: its late messages
// are ignored until it joins again.
func (e *Engine[S, V]) OnNodeLeft(node NodeID) {
	if node == e.self || node == "" {
		return
	}
	e.views.remove(node)
	e.departed[node] = struct{}{}
	delete(e.orphans, node)
	e.forgetFailed(node)
	e.dropStreams(node, true)
}

// OnNodeFailed records that the membership layer considers a node failed.
// The view is kept (it ages into staleness) and the peer counts as failing
// until it syncs again; its messages are still accepted, since a suspected
// node may be alive.
func (e *Engine[S, V]) OnNodeFailed(node NodeID) {
	if node == e.self {
		return
	}
	if _, gone := e.departed[node]; gone {
		return
	}
	e.failure(node, "node failed")
	e.markFailed(node)
	e.dropStreams(node, false)
}

// ForgetDeparted drops everything the engine remembers of a node that left
// (its departed mark, peer status and view): the membership layer reaped
// it, so it will not send again under this identity, and the departed set
// stays bounded. A later join starts afresh.
func (e *Engine[S, V]) ForgetDeparted(node NodeID) {
	if node == e.self || node == "" {
		return
	}
	delete(e.departed, node)
	delete(e.orphans, node)
	e.views.remove(node)
	e.forgetFailed(node)
	e.dropStreams(node, true)
}

// IsDeparted reports whether node left and has not joined again.
func (e *Engine[S, V]) IsDeparted(node NodeID) bool {
	_, ok := e.departed[node]
	return ok
}

// success records an accepted snapshot: it answers the outstanding
// snapshot request, if any.
func (e *Engine[S, V]) success(p *peerState, m *WireMessage, now time.Time) {
	e.applied(p, m, now)
	if p.pulling() {
		p.flags &^= peerPulling
		delete(e.pulls, m.Source)
	}
}

// applied records an accepted update. A delta does not answer a snapshot
// request: the request stays outstanding until a snapshot comes or the pull
// timeout passes, so a burst of gapped deltas costs one request.
func (e *Engine[S, V]) applied(p *peerState, m *WireMessage, now time.Time) {
	e.clearFailures(m.Source, p)
	if p.flags&(peerSynced|peerSyncAside) != peerSynced {
		e.synced(m.Source, p)
	}
	e.attemptApplied(m.Source, p)
	if e.anyFailed && (p.flags&(peerFailed|peerUnresponsive) != 0 || e.listedFailed(m.Source)) {
		p.flags &^= peerFailed | peerUnresponsive
		e.publishFailed()
	}
	if m.SentUnixMs > 0 {
		p.latencyMs = int32(min(max(e.wallMs(now)-m.SentUnixMs, 0), math.MaxInt32))
	}
}

// HandleWire processes one inbound message and returns the actions it
// causes. Messages of other states, from the local node itself or from
// departed nodes are ignored. The message's Data is not retained beyond
// the call unless the state's decoder retains it.
func (e *Engine[S, V]) HandleWire(m *WireMessage) []Action {
	e.acts = e.acts[:0]
	defer e.flushAttempt()
	e.handleOne(m, time.Time{})
	if len(e.acts) == 0 {
		return nil
	}
	return e.acts
}

// HandleDeltaRun handles ms, messages that arrived together (one read of
// a connection) in this order, as HandleWire would one after another, and
// returns the actions of them all. When a run of them are deltas of one
// peer applied in sequence, it publishes the peer's view once, at the
// end of the run, instead of after every delta: readers see the run's
// result (they could not tell it from reading a moment later), and the
// engine allocates one view for the run. The deltas of the call arrived
// together, so the clock is read once for each unbroken sequence of them:
// each is recorded as received at that reading. Another kind of message
// in between reads the clock as HandleWire does, and the deltas after it
// read it again, so no delta is recorded as received before a message
// handled ahead of it. The messages' Data is not retained beyond the call
// unless the state's decoder retains it.
func (e *Engine[S, V]) HandleDeltaRun(ms []WireMessage) []Action {
	e.acts = e.acts[:0]
	defer e.flushAttempt()
	defer e.publishRun()
	var now time.Time // read at the first delta of a sequence
	for i := range ms {
		e.runDefer = i < len(ms)-1 && ms[i+1].Source == ms[i].Source
		switch {
		case ms[i].Kind != KindDeltaUpdate:
			now = time.Time{}
		case now.IsZero():
			now = e.now()
		}
		e.handleOne(&ms[i], now)
		if !e.runDefer {
			e.publishRun()
		}
	}
	return e.acts
}

// publishRun publishes the view a run of deltas left unpublished, if any
// (see HandleDeltaRun), and ends the deferral.
func (e *Engine[S, V]) publishRun() {
	e.runDefer = false
	e.storeRun()
}

// storeRun publishes the view a run of deltas left unpublished, if any.
func (e *Engine[S, V]) storeRun() {
	if e.runView != nil {
		e.runSlot.Store(e.runView)
		e.runView, e.runSlot = nil, nil
	}
}

// handleOne handles one inbound message, adding its actions to e.acts. A
// delta is recorded as received at now, or at a reading of the clock when
// now is zero.
func (e *Engine[S, V]) handleOne(m *WireMessage, now time.Time) {
	if e.runView != nil && (m.Kind != KindDeltaUpdate || e.views.slot(m.Source) != e.runSlot) {
		e.storeRun()
	}
	if e.anyFailed {
		e.heardFrom(m.Source)
	}
	if e.st != nil {
		// The actions of the last call are dispatched: let go of their
		// chunks, then end the streams that went idle.
		clear(e.acts[len(e.acts):cap(e.acts)])
		e.expireStreams()
	}
	switch m.Kind {
	case KindBatchedChangeFeed:
		e.handleFeed(m)
		return
	case KindDigest:
		e.handleDigest(m)
		return
	case KindFullSnapshot, KindDeltaUpdate, KindRequestSnapshot, KindSnapshotChunk, KindSnapshotPull:
	default:
		return
	}
	if m.State != e.name || m.Source == e.self || m.Source == "" {
		return
	}
	if _, gone := e.departed[m.Source]; gone {
		e.m.departedIgnored.Add(1)
		return
	}
	switch m.Kind {
	case KindFullSnapshot:
		e.supersedeStream(m)
		e.handleSnapshot(m)
	case KindDeltaUpdate:
		if !e.holdDelta(m) {
			e.handleDelta(m, now)
		}
	case KindRequestSnapshot:
		e.sendOwn(m.Source, true)
	case KindSnapshotChunk:
		e.handleChunk(m)
	case KindSnapshotPull:
		e.handlePull(m)
	}
}

func (e *Engine[S, V]) handleSnapshot(m *WireMessage) {
	now := e.now()
	p := e.peer(m.Source)
	e.attempted(m.Source, now)
	// A snapshot that arrives while a pull sent after a notice is in flight
	// is taken for the owner's answer: the owner is the authority on its
	// own generation, so a pending generation above it is cleared.
	answer := e.askedPending(m.Source, p)
	cur := e.views.get(m.Source)
	if cur != nil && m.Generation == cur.Generation && !cur.Generation.IsZero() {
		// The generation held is confirmed: renew its freshness.
		v := e.newView()
		*v = *cur
		v.syncedNs = e.since(now)
		if !v.Pending.IsZero() && !m.Generation.Less(v.Pending) {
			v.Pending = Generation{}
		} else if answer && m.Generation.Less(v.Pending) {
			e.overrule(m.Source, v.Pending)
			v.Pending = Generation{}
		}
		e.views.put(m.Source, v)
		e.m.snapshotsConfirmed.Add(1)
		e.success(p, m, now)
		return
	}
	if cur != nil && m.Generation.Less(cur.Generation) {
		e.m.staleDiscarded.Add(1)
		return
	}
	val, err := e.snapshotView(m)
	if err != nil {
		e.decodeFailure(m.Source, err)
		if errors.Is(err, ErrCallbackPanic) {
			// Malformed as far as this node can tell: ask again (at most
			// once per pull timeout).
			e.requestSnapshot(m.Source, now)
		}
		return
	}
	e.installSnapshot(p, m, cur, val, now, answer)
}

// installSnapshot publishes the decoded view of a snapshot, whole or
// streamed (m is its header).
func (e *Engine[S, V]) installSnapshot(p *peerState, m *WireMessage, cur *StateViewObject[V], val V, now time.Time, answer bool) {
	e.m.snapshotsReceived.Add(1) // before the view is published, as deltas are
	e.acceptView(p, m, cur, val, now, answer)
	if cur != nil && !cur.Generation.IsZero() && m.Generation.Incarnation > cur.Generation.Incarnation {
		// The peer restarted: whatever its previous incarnation held of
		// this node is gone, and the join-time snapshot may have been lost
		// with its old connections. Send it the own snapshot again.
		e.sendOwn(m.Source, false)
	}
}

// acceptView publishes a decoded snapshot as m.Source's view. A pending
// generation above it is kept, unless the snapshot is the owner's answer to
// a pull sent after the notice (answer), which overrules the notice.
func (e *Engine[S, V]) acceptView(p *peerState, m *WireMessage, cur *StateViewObject[V], val V, now time.Time, answer bool) {
	v := e.newView()
	*v = StateViewObject[V]{
		Generation: m.Generation, WireVersion: m.WireVersion, Value: val,
		ModifiedUnixMs: m.ModifiedUnixMs, syncedNs: e.since(now),
	}
	if m.CreatedUnixMs == 0 && m.ModifiedUnixMs == 0 {
		v.ModifiedUnixMs = e.wallMs(now)
	}
	if cur != nil && m.Generation.Less(cur.Pending) {
		if answer && cur.Pending != placeholderPending {
			e.overrule(m.Source, cur.Pending)
		} else {
			v.Pending = cur.Pending
		}
	}
	e.views.put(m.Source, v)
	e.success(p, m, now)
}

// overrule counts and reports a pending generation of owner that its own
// answer to a pull showed to be ahead of it: a notice announced a
// generation the owner does not have.
func (e *Engine[S, V]) overrule(owner NodeID, pending Generation) {
	e.m.noticesOverruled.Add(1)
	e.acts = append(e.acts, Action{Kind: ActionNoticeRejected, Target: owner,
		Notice: ChangeNotification{State: e.name, Source: owner, Generation: pending}})
}

func (e *Engine[S, V]) decodeFailure(src NodeID, err error) {
	e.m.syncFailures.Add(1)
	if errors.Is(err, ErrUnknownVersion) {
		e.failure(src, fmt.Sprintf("version mismatch: %v", err))
		if e.cfg.VersionMismatchPolicy == DropAndWait {
			// Not departed: a readable message recreates the view.
			e.dropView(src)
		}
	} else {
		e.failure(src, fmt.Sprintf("malformed: %v", err))
	}
	if e.views.slot(src) == nil {
		e.publishFailed() // a peer without a readable view counts as failed
	}
}

// handleDelta applies a delta received at now (zero: read the clock).
func (e *Engine[S, V]) handleDelta(m *WireMessage, now time.Time) {
	if now.IsZero() {
		now = e.now()
	}
	p := e.peer(m.Source)
	e.attempted(m.Source, now)
	slot := e.views.slot(m.Source)
	var cur *StateViewObject[V]
	switch {
	case e.runView != nil && e.runSlot == slot:
		cur = e.runView // the run's view, unpublished: the latest
	case slot != nil:
		cur = slot.Load()
	}
	if e.codec.ApplyDelta == nil || cur == nil {
		e.publishRun()
		e.requestSnapshot(m.Source, now)
		return
	}
	g, c := m.Generation, cur.Generation
	if g.Incarnation != c.Incarnation || g.Age != c.Age+1 {
		if !c.Less(g) {
			e.m.staleDiscarded.Add(1)
			return
		}
		e.publishRun()
		e.m.ageGaps.Add(1)
		e.gap(m.Source, p)
		e.requestSnapshot(m.Source, now)
		return
	}
	val, err := e.applyDelta(cur.Value, m.Data, m.WireVersion)
	if err != nil {
		e.publishRun()
		e.decodeFailure(m.Source, err)
		if !errors.Is(err, ErrUnknownVersion) {
			e.requestSnapshot(m.Source, now)
		}
		return
	}
	pending := Generation{}
	if g.Less(cur.Pending) {
		pending = cur.Pending
	}
	if e.runSlot != slot {
		e.storeRun() // another peer's run (the caller keeps runs apart)
	}
	v := e.runView // overwritten in place: no reader has seen it
	if v == nil {
		v = e.newView()
	}
	v.Generation, v.WireVersion, v.Value = g, m.WireVersion, val
	v.ModifiedUnixMs, v.syncedNs, v.Pending = m.ModifiedUnixMs, e.since(now), pending
	// Counted before the view is published: a reader that sees the view
	// sees the count.
	e.m.deltasReceived.Add(1)
	if e.runDefer {
		e.runView, e.runSlot = v, slot
	} else {
		slot.Store(v) // still m.Source's slot: nothing changed the node set since
		e.runView, e.runSlot = nil, nil
	}
	e.applied(p, m, now)
}

// requestSnapshot asks a peer for its snapshot, at most once per pull
// timeout while a request is outstanding (until a snapshot answers it). It
// notes whether the view had a pending generation when the request left:
// the answer then overrules it (see handleSnapshot). A request that expired
// with nothing heard from the peer marks it unresponsive.
func (e *Engine[S, V]) requestSnapshot(node NodeID, now time.Time) {
	if e.streaming(node) {
		return // the stream in progress answers
	}
	p := e.peer(node)
	if p.pulling() && now.Sub(e.instant(e.pulls[node].at)) < e.pullPeriod {
		return
	}
	if e.detectUnresponsive(node, p, now) {
		e.publishFailed()
	}
	cur := e.views.get(node)
	if e.pulls == nil {
		e.pulls = make(map[NodeID]pull)
	}
	e.pulls[node] = pull{at: e.mono(now), askedPending: cur != nil && cur.HasPending() && cur.Pending != placeholderPending}
	p.flags |= peerPulling
	e.m.requestsSent.Add(1)
	kind := KindRequestSnapshot
	if e.streamsFrom(node) {
		kind = KindSnapshotPull // a zero generation: a new stream
	}
	e.acts = append(e.acts, Action{Kind: ActionSend, Target: node, Message: WireMessage{
		Kind: kind, State: e.name, Source: e.self, SentUnixMs: e.wallMs(now),
	}})
}

// handleFeed marks views stale from the notices of a feed. A node's feed
// carries only its own notices (its aggregator is handed the actions of its
// own engines), so a notice about any other node than the feed's sender is
// refused: counted, and reported once per feed. Otherwise any member could
// pin any other member's view stale with a generation it made up.
func (e *Engine[S, V]) handleFeed(m *WireMessage) {
	if m.Source == e.self {
		return
	}
	reported := false
	for i := range m.Notifications {
		n := &m.Notifications[i]
		if n.State != e.name {
			continue
		}
		if n.Source != m.Source {
			e.m.noticesRefused.Add(1)
			if !reported {
				reported = true
				e.acts = append(e.acts, Action{Kind: ActionNoticeRejected, Target: m.Source, Notice: *n})
			}
			continue
		}
		if _, gone := e.departed[n.Source]; gone {
			e.m.departedIgnored.Add(1)
			continue
		}
		cur := e.views.get(n.Source)
		if cur == nil || !cur.Generation.Less(n.Generation) || !cur.Pending.Less(n.Generation) {
			continue // unknown peer, already held, or a higher one already pending
		}
		v := e.newView()
		*v = *cur
		v.Pending = n.Generation
		e.views.put(n.Source, v)
		e.m.noticesReceived.Add(1)
	}
}
