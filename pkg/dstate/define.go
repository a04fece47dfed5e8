package dstate

import "slices"

// SimpleEngineConfig builds the EngineConfig of a simple state, whose whole
// value is its view.
func SimpleEngineConfig[S any](def DistributedState[S], node NodeID, cfg StateConfig, clock Clock) EngineConfig[S, S] {
	c := EngineConfig[S, S]{
		Name: def.Name(), Node: node, WireVersion: def.WireVersion(), StorageVersion: def.StorageVersion(),
		State: cfg, Clock: clock,
		Codec: Codec[S, S]{
			Project:     func(s *S) S { return *s },
			EncodeView:  def.EncodeState,
			DecodeView:  def.DecodeState,
			EncodeState: def.EncodeState,
			DecodeState: def.DecodeState,
			ViewIsState: true,
		},
	}
	withChunks(&c.Codec, def)
	return c
}

// withChunks fills the codec's chunk functions when def is a
// [ChunkedViewCodec] of its views.
func withChunks[S, V any](c *Codec[S, V], def any) {
	if cc, ok := def.(ChunkedViewCodec[V]); ok {
		c.EncodeViewChunks, c.NewViewDecoder = cc.EncodeViewChunks, cc.NewViewDecoder
	}
}

// NewSimpleEngine returns an engine for a simple state starting at initial.
func NewSimpleEngine[S any](def DistributedState[S], node NodeID, cfg StateConfig, clock Clock, initial S) (*Engine[S, S], error) {
	return NewEngine(SimpleEngineConfig(def, node, cfg, clock), initial)
}

// DeltaEngineConfig builds the EngineConfig of a delta state.
func DeltaEngineConfig[S, V, D, C any](def DeltaDistributedState[S, V, D, C], node NodeID, cfg StateConfig, clock Clock) EngineConfig[S, V] {
	c := EngineConfig[S, V]{
		Name: def.Name(), Node: node, WireVersion: def.WireVersion(), StorageVersion: def.StorageVersion(),
		State: cfg, Clock: clock,
		Codec: Codec[S, V]{
			Project:    def.ProjectView,
			EncodeView: def.EncodeView,
			DecodeView: def.DecodeView,
			ApplyDelta: func(view V, data []byte, wireVersion uint32) (V, error) {
				d, err := def.DecodeDelta(data, wireVersion)
				if err != nil {
					return view, err
				}
				return def.ApplyDelta(view, d)
			},
			EncodeState: def.EncodeState,
			DecodeState: def.DecodeState,
		},
	}
	withChunks(&c.Codec, def)
	return c
}

// DeltaEngine is an [Engine] for a [DeltaDistributedState]: it adds
// mutations that produce a change, from which a view delta is projected,
// encoded and broadcast.
type DeltaEngine[S, V, D, C any] struct {
	*Engine[S, V]
	def     DeltaDistributedState[S, V, D, C]
	urgency UrgencyDecider[V, C] // def's, or nil for Default

	appender DeltaAppender[D] // def's, or nil: see DeltaAppender
	deltaBuf []byte           // the reused delta encoding buffer (appender)
}

// NewDeltaEngine returns a delta engine starting at initial.
func NewDeltaEngine[S, V, D, C any](def DeltaDistributedState[S, V, D, C], node NodeID, cfg StateConfig, clock Clock, initial S) (*DeltaEngine[S, V, D, C], error) {
	e, err := NewEngine(DeltaEngineConfig(def, node, cfg, clock), initial)
	if err != nil {
		return nil, err
	}
	de := &DeltaEngine[S, V, D, C]{Engine: e, def: def}
	de.urgency, _ = def.(UrgencyDecider[V, C])
	de.appender, _ = def.(DeltaAppender[D])
	return de, nil
}

// Definition returns the state definition.
func (e *DeltaEngine[S, V, D, C]) Definition() DeltaDistributedState[S, V, D, C] { return e.def }

// DeltaMutateResult is what a committed delta mutation produced.
type DeltaMutateResult[V, D any] struct {
	MutateResult[V]
	Delta D
}

// MutateWithDelta applies fn, projects the view and the view delta of the
// change it returns, asks the definition for the change's urgency (when it
// is an [UrgencyDecider]; [Default] otherwise) and
// returns the actions that publish it (a DeltaUpdate when broadcast). A
// panic in fn or a callback undoes the mutation and is raised again as a
// *CallbackPanicError (see [DeltaEngine.TryPrepareDelta]).
func (e *DeltaEngine[S, V, D, C]) MutateWithDelta(fn func(*S) C) DeltaMutateResult[V, D] {
	_, d := e.PrepareDelta(fn)
	return DeltaMutateResult[V, D]{MutateResult: e.Commit(), Delta: d}
}

// PrepareDelta is the first half of a two-phase delta mutation (see
// [Engine.Prepare]); it returns the object to save and the view delta. The
// encoded delta is available from PreparedDelta for persistence backends
// that append deltas. A panic in fn or a callback undoes the mutation and
// is raised again as a *CallbackPanicError (see [DeltaEngine.TryPrepareDelta]).
func (e *DeltaEngine[S, V, D, C]) PrepareDelta(fn func(*S) C) (*StateObject[S], D) {
	obj, d, err := e.TryPrepareDelta(fn)
	if err != nil {
		panic(err)
	}
	return obj, d
}

// TryPrepareDelta is PrepareDelta that recovers panics, as
// [Engine.TryPrepare] does: when fn, ProjectView, ProjectDelta,
// SyncUrgency, EncodeDelta or (when the change travels as a snapshot)
// EncodeView panics, the owned value, generation and modified time are
// restored, nothing is pending, and the panic is returned as a
// *CallbackPanicError. A mutation over the size limits is undone the same
// way and returned as a *SizeLimitError (see [Engine.TryPrepare]).
func (e *DeltaEngine[S, V, D, C]) TryPrepareDelta(fn func(*S) C) (obj *StateObject[S], d D, err error) {
	if err := e.checkpoint(); err != nil {
		return nil, d, err
	}
	e.begin(Default)
	stage := stageMutation
	defer func() {
		if r := recover(); r != nil {
			var zero D
			obj, d, err = nil, zero, e.undoPanic(stage, r)
		}
	}()
	change := fn(&e.obj.Value)
	old := e.views.get(e.self).Value
	stage = stageProjectView
	view := e.def.ProjectView(&e.obj.Value)
	stage = stageProjectDelta
	d = e.def.ProjectDelta(change)
	p := &e.pend
	p.view, p.hasView = view, true
	if e.urgency != nil {
		stage = stageSyncUrgency
		p.urgency = e.urgency.SyncUrgency(old, view, change)
	}
	stage = stageEncodeDelta
	if data, scratch, err := e.encodeDelta(d); err == nil {
		p.deltaData, p.hasDelta, p.deltaScratch = data, true, scratch
	} else {
		e.m.encodeFailures.Add(1) // a snapshot carries the change instead
	}
	stage = stageEncodeView
	if err := e.prepareSnapshot(); err != nil {
		var zero D
		return nil, zero, err
	}
	return &e.obj, d, nil
}

// PreparedDelta returns the encoded delta of the prepared mutation, or nil.
// The caller may keep it: when the delta was encoded into the engine's
// reused buffer (see [DeltaAppender]), it is a copy.
func (e *Engine[S, V]) PreparedDelta() []byte {
	if !e.pend.active || !e.pend.hasDelta {
		return nil
	}
	if e.pend.deltaScratch {
		return slices.Clone(e.pend.deltaData)
	}
	return e.pend.deltaData
}
