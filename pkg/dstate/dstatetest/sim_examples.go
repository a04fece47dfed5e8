package dstatetest

import (
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// NewExampleSimCluster starts a simulated cluster whose nodes run the
// example states that cfg.States selects (both when zero): Counter
// ("counter", with cfg.Counter and cfg.CounterConfig) and Gauges ("gauges",
// with cfg.Gauges and cfg.GaugesConfig), each configured by
// DefaultSimStateConfig when its config is zero. MutateCounter,
// MutateGauges, SetGauge, Counter, Gauges and WireVersions drive and read
// them.
func NewExampleSimCluster(cfg SimConfig) (*SimCluster, error) {
	if cfg.States&^SimBoth != 0 {
		return nil, fmt.Errorf("dstatetest: SimConfig.States %d selects unknown states", cfg.States)
	}
	if cfg.States == 0 {
		cfg.States = SimBoth
	}
	if cfg.State != (dstate.StateConfig{}) {
		return nil, fmt.Errorf("dstatetest: SimConfig.State is for NewSimCluster; the example states take CounterConfig and GaugesConfig")
	}
	var specs []simSpec
	if cfg.States&SimCounter != 0 {
		sp, err := simpleSpec[Counter](cfg.Counter, cfg.CounterConfig, Counter{})
		if err != nil {
			return nil, fmt.Errorf("dstatetest: SimConfig.CounterConfig: %w", err)
		}
		sp.format = FormatCounter
		specs = append(specs, sp)
	}
	if cfg.States&SimGauges != 0 {
		var wrap func(dstate.DeltaDistributedState[Gauges, GaugesView, GaugeDelta, GaugeChange]) dstate.DeltaDistributedState[Gauges, GaugesView, GaugeDelta, GaugeChange]
		if cfg.brokenDelta {
			wrap = func(d dstate.DeltaDistributedState[Gauges, GaugesView, GaugeDelta, GaugeChange]) dstate.DeltaDistributedState[Gauges, GaugesView, GaugeDelta, GaugeChange] {
				return brokenGauges{d}
			}
		}
		sp, err := deltaSpec(dstate.DeltaDistributedState[Gauges, GaugesView, GaugeDelta, GaugeChange](cfg.Gauges), cfg.GaugesConfig, NewGauges(), wrap)
		if err != nil {
			return nil, fmt.Errorf("dstatetest: SimConfig.GaugesConfig: %w", err)
		}
		sp.format = GaugesView.String
		specs = append(specs, sp)
	}
	return newSimCluster(cfg, specs)
}

// brokenGauges is a Gauges definition with a wrong ApplyDelta (see
// SimConfig.brokenDelta).
type brokenGauges struct {
	dstate.DeltaDistributedState[Gauges, GaugesView, GaugeDelta, GaugeChange]
}

func (b brokenGauges) ApplyDelta(v GaugesView, d GaugeDelta) (GaugesView, error) {
	d.Value++
	return b.DeltaDistributedState.ApplyDelta(v, d)
}

func (b brokenGauges) SyncUrgency(old, new GaugesView, c GaugeChange) dstate.SyncUrgency {
	if u, ok := b.DeltaDistributedState.(dstate.UrgencyDecider[GaugesView, GaugeChange]); ok {
		return u.SyncUrgency(old, new, c)
	}
	return dstate.Default
}

// exampleSpec returns the cluster's spec of the named example state.
func exampleSpec[S, V any](c *SimCluster, name string) (*simSpecOf[S, V], error) {
	if i := c.specIndex(name); i >= 0 {
		if sp, ok := c.specs[i].(*simSpecOf[S, V]); ok {
			return sp, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNoSuchState, name)
}

// MutateCounter applies fn to the node's Counter with the given urgency and
// performs the resulting actions. It returns the new generation.
func (c *SimCluster) MutateCounter(id dstate.NodeID, urgency dstate.SyncUrgency, fn func(*Counter)) (dstate.Generation, error) {
	if _, err := c.upNode(id); err != nil {
		return dstate.Generation{}, err
	}
	sp, err := exampleSpec[Counter, Counter](c, "counter")
	if err != nil {
		return dstate.Generation{}, err
	}
	return mutate(c, sp, id, urgency, fn)
}

// MutateGauges applies a delta mutation to the node's Gauges (its urgency
// is the change's) and performs the resulting actions. It returns the new
// generation.
func (c *SimCluster) MutateGauges(id dstate.NodeID, fn func(*Gauges) GaugeChange) (dstate.Generation, error) {
	if _, err := c.upNode(id); err != nil {
		return dstate.Generation{}, err
	}
	sp, err := exampleSpec[Gauges, GaugesView](c, "gauges")
	if err != nil {
		return dstate.Generation{}, err
	}
	return (&DeltaSim[Gauges, GaugesView, GaugeDelta, GaugeChange]{SimCluster: c, spec: sp}).MutateDelta(id, fn)
}

// SetGauge sets one gauge of the node with the given urgency (see
// MutateGauges).
func (c *SimCluster) SetGauge(id dstate.NodeID, key string, value int64, urgency dstate.SyncUrgency) (dstate.Generation, error) {
	set := Set(key, value)
	return c.MutateGauges(id, func(g *Gauges) GaugeChange {
		ch := set(g)
		ch.Urgency = urgency
		return ch
	})
}

// Counter returns the node's Counter engine, or nil when the node is not
// running or does not run the state. Driving it directly bypasses the
// network: use the cluster's methods to mutate.
func (c *SimCluster) Counter(id dstate.NodeID) *dstate.Engine[Counter, Counter] {
	sp, err := exampleSpec[Counter, Counter](c, "counter")
	if err != nil {
		return nil
	}
	return (&Sim[Counter]{SimCluster: c, spec: sp}).Engine(id)
}

// Gauges returns the node's Gauges engine, or nil (see Counter).
func (c *SimCluster) Gauges(id dstate.NodeID) *dstate.DeltaEngine[Gauges, GaugesView, GaugeDelta, GaugeChange] {
	sp, err := exampleSpec[Gauges, GaugesView](c, "gauges")
	if err != nil {
		return nil
	}
	return (&DeltaSim[Gauges, GaugesView, GaugeDelta, GaugeChange]{SimCluster: c, spec: sp}).Engine(id)
}

// WireVersions returns the wire versions of the node's counter and gauges
// definitions (0 for a state the cluster does not run).
func (c *SimCluster) WireVersions(id dstate.NodeID) (counter, gauges uint32) {
	n := c.nodes[id]
	if n == nil {
		return 0, 0
	}
	for _, st := range n.states {
		switch st.name() {
		case "counter":
			counter = st.wireVersion()
		case "gauges":
			gauges = st.wireVersion()
		}
	}
	return counter, gauges
}
