package dstatetest

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// SimWireReader is an optional capability of the definition of a simulated
// state: the wire versions it reads besides its own. With the
// DropAndWait version policy, a node drops the views of an owner whose wire
// version it cannot read; a [GenerationMonitor] asks this to tell such a
// drop from a lost view. Without it, a definition reads only its own wire
// version.
type SimWireReader interface {
	// ReadsWire reports whether the definition reads views and deltas in
	// the given wire version.
	ReadsWire(version uint32) bool
}

// simSpec is one state every node of a SimCluster runs, type-erased: its
// name and configuration, and how to start a node's engine of it.
type simSpec interface {
	name() string
	config() dstate.StateConfig
	// start creates n's engine of the state as a new incarnation above
	// any the node had. prev is the node's engine of its last run (nil at
	// the first start), over the node's definition then.
	start(c *SimCluster, n *simNode, prev simState, opts *SimRestart) (simState, error)
}

// simState is the type-erased face of one engine of a simulated node: what
// the cluster needs to drive it and to compare its views.
type simState interface {
	name() string
	// stop ends what the engine runs beyond its calls (its snapshot
	// streams' encoders) when the node restarts or crashes.
	stop()
	handle(m *dstate.WireMessage) []dstate.Action
	handleRun(ms []dstate.WireMessage) []dstate.Action
	joined(id dstate.NodeID) []dstate.Action
	left(id dstate.NodeID)
	failed(id dstate.NodeID)
	periodic() []dstate.Action
	digestEntry() dstate.ChangeNotification
	query(maxStaleness time.Duration) dstate.QueryResult
	generation() dstate.Generation
	// owners returns, sorted, the nodes this engine holds a view of (self
	// included).
	owners() []dstate.NodeID
	// view returns the generation, pending generation and encoded value of
	// the view of owner.
	view(owner dstate.NodeID) (simViewInfo, bool)
	// encoded returns the encoding of the view of owner, for comparisons.
	encoded(owner dstate.NodeID) ([]byte, bool)
	// describe formats the value of the view of owner for people.
	describe(owner dstate.NodeID) string
	metrics() dstate.SyncMetrics
	schedule() *simSchedule
	// wireVersion is the wire version the node's definition writes;
	// reads reports whether it reads v.
	wireVersion() uint32
	reads(v uint32) bool
	// save persists the own state in the node's envelopes.
	save(store dstate.EnvelopeStore, id dstate.NodeID)
}

// simViewInfo is the comparable part of one view.
type simViewInfo struct {
	gen, pending dstate.Generation
	// obj identifies the view object: the engine publishes a new one on
	// every change and never reuses one while it is referenced.
	obj any
}

// simSchedule is when an engine's periodic sync fires: every period ticks,
// offset by phase from the node's start.
type simSchedule struct {
	period int64
	phase  int64
}

// simSpecOf is a simSpec for a state of type S with view V: a simple state
// (V is S) or a delta state.
type simSpecOf[S, V any] struct {
	stateName string
	cfg       dstate.StateConfig
	def       dstate.StateCodec[S] // the cluster's definition
	initial   []byte               // the initial value, encoded by def
	// newEngine builds an engine over a node's definition; typed is what
	// Sim hands out (the *Engine or the *DeltaEngine).
	newEngine func(def dstate.StateCodec[S], id dstate.NodeID, cfg dstate.StateConfig, clock dstate.Clock) (e *dstate.Engine[S, V], typed any, err error)
	// encodeView encodes a view with a node's definition.
	encodeView func(def dstate.StateCodec[S], v V) ([]byte, error)
	format     func(V) string
}

func newSpec[S, V any](def dstate.StateCodec[S], cfg dstate.StateConfig, initial S) (*simSpecOf[S, V], error) {
	if cfg == (dstate.StateConfig{}) {
		cfg = DefaultSimStateConfig()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dstatetest: state %q: %w", def.Name(), err)
	}
	b, err := def.EncodeState(initial)
	if err != nil {
		return nil, fmt.Errorf("dstatetest: state %q: encode the initial value: %w", def.Name(), err)
	}
	if _, err := def.DecodeState(b, def.StorageVersion()); err != nil {
		return nil, fmt.Errorf("dstatetest: state %q: decode the initial value: %w", def.Name(), err)
	}
	return &simSpecOf[S, V]{stateName: def.Name(), cfg: cfg, def: def, initial: b,
		format: func(v V) string { return fmt.Sprint(v) }}, nil
}

func (sp *simSpecOf[S, V]) name() string               { return sp.stateName }
func (sp *simSpecOf[S, V]) config() dstate.StateConfig { return sp.cfg }

// fresh returns a new copy of the initial value.
func (sp *simSpecOf[S, V]) fresh() S {
	v, _ := sp.def.DecodeState(sp.initial, sp.def.StorageVersion()) // checked by newSpec
	return v
}

// copyOf returns a deep copy of v, through def's encoding.
func copyOf[S any](def dstate.StateCodec[S], v S) (S, error) {
	b, err := def.EncodeState(v)
	if err != nil {
		return v, err
	}
	return def.DecodeState(b, def.StorageVersion())
}

func (sp *simSpecOf[S, V]) start(c *SimCluster, n *simNode, prev simState, opts *SimRestart) (simState, error) {
	def := sp.def
	p, _ := prev.(*simEngine[S, V])
	if p != nil {
		def = p.def
	}
	var set *SimStateStart
	for i := range opts.States {
		if opts.States[i].state == sp.stateName {
			set = &opts.States[i]
		}
	}
	if set != nil && set.def != nil {
		d, ok := set.def.(dstate.StateCodec[S])
		if !ok {
			return nil, fmt.Errorf("dstatetest: state %q: the definition %T is not of the state's type", sp.stateName, set.def)
		}
		def = d
	}
	value := sp.fresh()
	switch {
	case set != nil && set.hasValue:
		v, ok := set.value.(S)
		if !ok {
			return nil, fmt.Errorf("dstatetest: state %q: the value %T is not of the state's type", sp.stateName, set.value)
		}
		cp, err := copyOf(def, v)
		if err != nil {
			return nil, fmt.Errorf("dstatetest: state %q: copy the start value: %w", sp.stateName, err)
		}
		value = cp
	case opts.KeepValue && p != nil:
		cp, err := copyOf(p.def, p.e.State().Value)
		if err != nil {
			return nil, fmt.Errorf("dstatetest: state %q: copy the kept value: %w", sp.stateName, err)
		}
		value = cp
	}
	e, typed, err := sp.newEngine(def, n.id, sp.cfg, c.clock)
	if err != nil {
		return nil, err
	}
	if c.cfg.SnapshotChunk > 0 {
		e.SetSnapshotChunking(c.cfg.SnapshotChunk, 2)
	}
	atLeast := n.lastInc[sp.stateName] + 1
	if opts.Restore {
		restoreOrReincarnate(e, dstate.PersistenceFor[S](n.store, n.id, def), def.StorageVersion(), sp.fresh(), atLeast)
	} else {
		e.Reincarnate(value, atLeast)
	}
	n.lastInc[sp.stateName] = max(n.lastInc[sp.stateName], e.Generation().Incarnation)
	return &simEngine[S, V]{spec: sp, def: def, e: e, typed: typed, sched: c.newSchedule(sp.cfg)}, nil
}

// simEngine adapts an *dstate.Engine (simple or the engine of a delta
// state) to simState.
type simEngine[S, V any] struct {
	spec  *simSpecOf[S, V]
	def   dstate.StateCodec[S] // the node's definition
	e     *dstate.Engine[S, V]
	typed any // *dstate.Engine[S, V] or *dstate.DeltaEngine
	sched simSchedule
}

func (s *simEngine[S, V]) name() string                                 { return s.e.Name() }
func (s *simEngine[S, V]) stop()                                        { s.e.StopStreams() }
func (s *simEngine[S, V]) handle(m *dstate.WireMessage) []dstate.Action { return s.e.HandleWire(m) }
func (s *simEngine[S, V]) handleRun(ms []dstate.WireMessage) []dstate.Action {
	return s.e.HandleDeltaRun(ms)
}
func (s *simEngine[S, V]) joined(id dstate.NodeID) []dstate.Action { return s.e.OnNodeJoined(id) }
func (s *simEngine[S, V]) left(id dstate.NodeID)                   { s.e.OnNodeLeft(id) }
func (s *simEngine[S, V]) failed(id dstate.NodeID)                 { s.e.OnNodeFailed(id) }
func (s *simEngine[S, V]) periodic() []dstate.Action               { return s.e.PeriodicSync() }
func (s *simEngine[S, V]) digestEntry() dstate.ChangeNotification  { return s.e.DigestEntry() }
func (s *simEngine[S, V]) generation() dstate.Generation           { return s.e.Generation() }
func (s *simEngine[S, V]) owners() []dstate.NodeID                 { return s.e.Views().Nodes() }
func (s *simEngine[S, V]) metrics() dstate.SyncMetrics             { return s.e.Metrics() }
func (s *simEngine[S, V]) schedule() *simSchedule                  { return &s.sched }
func (s *simEngine[S, V]) wireVersion() uint32                     { return s.def.WireVersion() }

func (s *simEngine[S, V]) reads(v uint32) bool {
	if v == s.def.WireVersion() {
		return true
	}
	r, ok := s.def.(SimWireReader)
	return ok && r.ReadsWire(v)
}

func (s *simEngine[S, V]) save(store dstate.EnvelopeStore, id dstate.NodeID) {
	// The in-memory store never fails.
	_ = dstate.PersistenceFor[S](store, id, s.def).Save(context.Background(), s.e.State(), nil)
}

func (s *simEngine[S, V]) query(maxStaleness time.Duration) dstate.QueryResult {
	return s.e.Query(maxStaleness)
}

func (s *simEngine[S, V]) view(owner dstate.NodeID) (simViewInfo, bool) {
	v, ok := s.e.Views().Get(owner)
	if !ok {
		return simViewInfo{}, false
	}
	return simViewInfo{gen: v.Generation, pending: v.Pending, obj: v}, true
}

func (s *simEngine[S, V]) encoded(owner dstate.NodeID) ([]byte, bool) {
	v, ok := s.e.Views().Get(owner)
	if !ok {
		return nil, false
	}
	b, err := s.spec.encodeView(s.def, v.Value)
	if err != nil {
		return nil, false
	}
	return b, true
}

func (s *simEngine[S, V]) describe(owner dstate.NodeID) string {
	v, ok := s.e.Views().Get(owner)
	if !ok {
		return ""
	}
	return s.spec.format(v.Value)
}

// simpleSpec is the simSpec of a simple state.
func simpleSpec[S any](def dstate.DistributedState[S], cfg dstate.StateConfig, initial S) (*simSpecOf[S, S], error) {
	sp, err := newSpec[S, S](def, cfg, initial)
	if err != nil {
		return nil, err
	}
	sp.newEngine = func(def dstate.StateCodec[S], id dstate.NodeID, cfg dstate.StateConfig, clock dstate.Clock) (*dstate.Engine[S, S], any, error) {
		d, ok := def.(dstate.DistributedState[S])
		if !ok {
			return nil, nil, fmt.Errorf("dstatetest: %T is not a dstate.DistributedState", def)
		}
		e, err := dstate.NewSimpleEngine(d, id, cfg, clock, sp.fresh())
		return e, e, err
	}
	sp.encodeView = func(def dstate.StateCodec[S], v S) ([]byte, error) { return def.EncodeState(v) }
	return sp, nil
}

// deltaSpec is the simSpec of a delta state; wrap, when set, wraps every
// node's definition (a test hook).
func deltaSpec[S, V, D, C any](def dstate.DeltaDistributedState[S, V, D, C], cfg dstate.StateConfig, initial S,
	wrap func(dstate.DeltaDistributedState[S, V, D, C]) dstate.DeltaDistributedState[S, V, D, C]) (*simSpecOf[S, V], error) {
	sp, err := newSpec[S, V](def, cfg, initial)
	if err != nil {
		return nil, err
	}
	asDelta := func(def dstate.StateCodec[S]) (dstate.DeltaDistributedState[S, V, D, C], error) {
		d, ok := def.(dstate.DeltaDistributedState[S, V, D, C])
		if !ok {
			return nil, fmt.Errorf("dstatetest: %T is not a dstate.DeltaDistributedState of the state's types", def)
		}
		return d, nil
	}
	sp.newEngine = func(def dstate.StateCodec[S], id dstate.NodeID, cfg dstate.StateConfig, clock dstate.Clock) (*dstate.Engine[S, V], any, error) {
		d, err := asDelta(def)
		if err != nil {
			return nil, nil, err
		}
		if wrap != nil {
			d = wrap(d)
		}
		e, err := dstate.NewDeltaEngine(d, id, cfg, clock, sp.fresh())
		if err != nil {
			return nil, nil, err
		}
		return e.Engine, e, nil
	}
	sp.encodeView = func(def dstate.StateCodec[S], v V) ([]byte, error) {
		d, err := asDelta(def)
		if err != nil {
			return nil, err
		}
		return d.EncodeView(v)
	}
	return sp, nil
}

// FormatCounter formats a Counter for tables and traces: its count, and its
// label when set ("7", "7 \"x\"").
func FormatCounter(c Counter) string {
	if c.Label == "" {
		return strconv.FormatInt(c.Count, 10)
	}
	return fmt.Sprintf("%d %q", c.Count, c.Label)
}
