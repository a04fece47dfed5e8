package dstatetest

import (
	"errors"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Sim is a [SimCluster] whose nodes run one simple state of type S, with
// typed access to it: mutate it on a node, read a node's view of it, start
// a node with a chosen value or definition. Every SimCluster method (steps,
// faults, crashes, restarts, convergence and idleness) is promoted.
type Sim[S any] struct {
	*SimCluster
	spec *simSpecOf[S, S]
}

// NewSimCluster starts a simulated cluster whose nodes each run def, from
// initial (copied per node through def's encoding), configured by
// cfg.State; cfg's example-state fields must be zero. Type inference
// takes S from def:
//
//	sim, err := dstatetest.NewSimCluster(MyState{}, MyValue{}, dstatetest.SimConfig{Seed: 1})
func NewSimCluster[S any](def dstate.DistributedState[S], initial S, cfg SimConfig) (*Sim[S], error) {
	if err := noExampleFields(cfg); err != nil {
		return nil, err
	}
	sp, err := simpleSpec(def, cfg.State, initial)
	if err != nil {
		return nil, err
	}
	c, err := newSimCluster(cfg, []simSpec{sp})
	if err != nil {
		return nil, err
	}
	return &Sim[S]{SimCluster: c, spec: sp}, nil
}

// DeltaSim is a [SimCluster] whose nodes run one delta state, with typed
// access to it (see [Sim]).
type DeltaSim[S, V, D, C any] struct {
	*SimCluster
	spec *simSpecOf[S, V]
}

// NewDeltaSimCluster is [NewSimCluster] for a delta state.
func NewDeltaSimCluster[S, V, D, C any](def dstate.DeltaDistributedState[S, V, D, C], initial S, cfg SimConfig) (*DeltaSim[S, V, D, C], error) {
	if err := noExampleFields(cfg); err != nil {
		return nil, err
	}
	sp, err := deltaSpec(def, cfg.State, initial, nil)
	if err != nil {
		return nil, err
	}
	c, err := newSimCluster(cfg, []simSpec{sp})
	if err != nil {
		return nil, err
	}
	return &DeltaSim[S, V, D, C]{SimCluster: c, spec: sp}, nil
}

// noExampleFields rejects the fields that only NewExampleSimCluster reads.
func noExampleFields(cfg SimConfig) error {
	if cfg.States != 0 || cfg.Counter != (CounterState{}) || cfg.Gauges != (GaugesState{}) ||
		cfg.CounterConfig != (dstate.StateConfig{}) || cfg.GaugesConfig != (dstate.StateConfig{}) || cfg.brokenDelta {
		return errors.New("dstatetest: SimConfig's States, Counter, Gauges, CounterConfig and GaugesConfig are for NewExampleSimCluster; configure the state with SimConfig.State")
	}
	return nil
}

// SimStateStart is how a node's copy of one state starts (see
// SimRestart.States): its definition, its value, or both. Build it with
// Sim.Start, Sim.StartDef and their DeltaSim counterparts.
type SimStateStart struct {
	state    string
	def      any // a dstate.StateCodec of the state's type, or nil
	value    any // of the state's type S, when hasValue
	hasValue bool
}

// SetFormat sets how values (views) of the state are formatted in traces,
// SimView.Value and errors (fmt.Sprint when not set).
func (s *Sim[S]) SetFormat(format func(S) string) { s.spec.format = format }

// SetFormat sets how views of the state are formatted (see Sim.SetFormat).
func (s *DeltaSim[S, V, D, C]) SetFormat(format func(V) string) { s.spec.format = format }

// Start returns the SimRestart.States entry that starts a node's state from
// value.
func (s *Sim[S]) Start(value S) SimStateStart {
	return SimStateStart{state: s.spec.stateName, value: value, hasValue: true}
}

// StartDef returns the SimRestart.States entry that starts a node's state
// from value under its own definition def (another version).
func (s *Sim[S]) StartDef(def dstate.DistributedState[S], value S) SimStateStart {
	return SimStateStart{state: s.spec.stateName, def: def, value: value, hasValue: true}
}

// Start returns the SimRestart.States entry that starts a node's state from
// value.
func (s *DeltaSim[S, V, D, C]) Start(value S) SimStateStart {
	return SimStateStart{state: s.spec.stateName, value: value, hasValue: true}
}

// StartDef returns the SimRestart.States entry that starts a node's state
// from value under its own definition def (another version).
func (s *DeltaSim[S, V, D, C]) StartDef(def dstate.DeltaDistributedState[S, V, D, C], value S) SimStateStart {
	return SimStateStart{state: s.spec.stateName, def: def, value: value, hasValue: true}
}

// Mutate applies fn to the node's state with the given urgency and
// performs the resulting actions. It returns the new generation.
func (s *Sim[S]) Mutate(id dstate.NodeID, urgency dstate.SyncUrgency, fn func(*S)) (dstate.Generation, error) {
	return mutate(s.SimCluster, s.spec, id, urgency, fn)
}

// Mutate applies fn to the node's state as a whole-state mutation (a
// snapshot goes out, not a delta) and performs the resulting actions.
func (s *DeltaSim[S, V, D, C]) Mutate(id dstate.NodeID, urgency dstate.SyncUrgency, fn func(*S)) (dstate.Generation, error) {
	return mutate(s.SimCluster, s.spec, id, urgency, fn)
}

// MutateDelta applies a delta mutation to the node's state (its urgency is
// the definition's, see dstate.UrgencyDecider) and performs the resulting
// actions. It returns the new generation.
func (s *DeltaSim[S, V, D, C]) MutateDelta(id dstate.NodeID, fn func(*S) C) (dstate.Generation, error) {
	st, n, err := engineOf(s.SimCluster, s.spec, id)
	if err != nil {
		return dstate.Generation{}, err
	}
	res := st.typed.(*dstate.DeltaEngine[S, V, D, C]).MutateWithDelta(fn)
	s.net.event("mutate %s %s %s = %s", id, s.spec.stateName, res.Generation, s.spec.format(res.View))
	s.persisted(n)
	s.perform(n, res.Actions)
	return res.Generation, nil
}

// Engine returns the node's engine, or nil when the node is not running.
// Driving it directly bypasses the network: use the cluster's methods to
// mutate.
func (s *Sim[S]) Engine(id dstate.NodeID) *dstate.Engine[S, S] {
	if st, _, err := engineOf(s.SimCluster, s.spec, id); err == nil {
		return st.e
	}
	return nil
}

// Engine returns the node's engine, or nil (see Sim.Engine).
func (s *DeltaSim[S, V, D, C]) Engine(id dstate.NodeID) *dstate.DeltaEngine[S, V, D, C] {
	if st, _, err := engineOf(s.SimCluster, s.spec, id); err == nil {
		return st.typed.(*dstate.DeltaEngine[S, V, D, C])
	}
	return nil
}

// Value returns the running observer's view of owner's state: its value
// and generation.
func (s *Sim[S]) Value(observer, owner dstate.NodeID) (S, dstate.Generation, bool) {
	return valueOf(s.SimCluster, s.spec, observer, owner)
}

// Value returns the running observer's view of owner's state (see
// Sim.Value).
func (s *DeltaSim[S, V, D, C]) Value(observer, owner dstate.NodeID) (V, dstate.Generation, bool) {
	return valueOf(s.SimCluster, s.spec, observer, owner)
}

// engineOf returns the running node's engine of spec.
func engineOf[S, V any](c *SimCluster, spec *simSpecOf[S, V], id dstate.NodeID) (*simEngine[S, V], *simNode, error) {
	n, err := c.upNode(id)
	if err != nil {
		return nil, nil, err
	}
	i := c.specIndex(spec.stateName)
	if i < 0 {
		return nil, nil, fmt.Errorf("%w: %s", ErrNoSuchState, spec.stateName)
	}
	st, ok := n.states[i].(*simEngine[S, V])
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s of another type", ErrNoSuchState, spec.stateName)
	}
	return st, n, nil
}

func mutate[S, V any](c *SimCluster, spec *simSpecOf[S, V], id dstate.NodeID, urgency dstate.SyncUrgency, fn func(*S)) (dstate.Generation, error) {
	st, n, err := engineOf(c, spec, id)
	if err != nil {
		return dstate.Generation{}, err
	}
	res := st.e.Mutate(fn, urgency)
	c.net.event("mutate %s %s %s %s = %s", id, spec.stateName, urgency, res.Generation, spec.format(res.View))
	c.persisted(n)
	c.perform(n, res.Actions)
	return res.Generation, nil
}

func valueOf[S, V any](c *SimCluster, spec *simSpecOf[S, V], observer, owner dstate.NodeID) (V, dstate.Generation, bool) {
	var zero V
	st, _, err := engineOf(c, spec, observer)
	if err != nil {
		return zero, dstate.Generation{}, false
	}
	v, ok := st.e.Views().Get(owner)
	if !ok {
		return zero, dstate.Generation{}, false
	}
	return v.Value, v.Generation, true
}
