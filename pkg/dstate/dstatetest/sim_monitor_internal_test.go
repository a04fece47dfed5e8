package dstatetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// rewound is a deliberately broken engine face: it reports its view of
// owner at gen whatever the engine holds.
type rewound struct {
	simState
	owner dstate.NodeID
	gen   dstate.Generation
}

func (r rewound) view(owner dstate.NodeID) (simViewInfo, bool) {
	info, ok := r.simState.view(owner)
	if owner == r.owner {
		info.gen = r.gen
	}
	return info, ok
}

func newInternalSim(t *testing.T, cfg SimConfig) *SimCluster {
	t.Helper()
	c, err := NewExampleSimCluster(cfg)
	require.NoError(t, err)
	require.NoError(t, c.Settle(100))
	return c
}

// TestMonitorCatchesGenerationRegression: a view that moves back to an
// older generation of its owner is reported as ErrGenerationRegressed.
func TestMonitorCatchesGenerationRegression(t *testing.T) {
	c := newInternalSim(t, SimConfig{Nodes: 3, States: SimCounter})
	mon := NewGenerationMonitor()
	for range 3 {
		_, err := c.MutateCounter("n1", dstate.Immediate, func(x *Counter) { x.Count++ })
		require.NoError(t, err)
	}
	require.NoError(t, c.Settle(100))
	require.NoError(t, mon.Check(c))

	n2 := c.nodes["n2"]
	g := c.Counter("n1").Generation()
	n2.states[0] = rewound{simState: n2.states[0], owner: "n1", gen: dstate.Generation{Incarnation: g.Incarnation, Age: g.Age - 1}}
	err := mon.Check(c)
	require.ErrorIs(t, err, ErrGenerationRegressed)
	require.Contains(t, err.Error(), "n2's view of counter@n1")
}

// TestMonitorCatchesWrongValueAtCorrectGeneration: with a Gauges state
// whose ApplyDelta is wrong, a peer's view reaches the owner's generation
// with another value; the monitor reports it at once, while the end-state
// comparison passes once a later snapshot has overwritten the view.
func TestMonitorCatchesWrongValueAtCorrectGeneration(t *testing.T) {
	c := newInternalSim(t, SimConfig{Nodes: 3, States: SimGauges, brokenDelta: true})
	mon := NewGenerationMonitor()
	require.NoError(t, mon.Check(c))
	gen, err := c.SetGauge("n1", "a", 5, dstate.Default)
	require.NoError(t, err)
	var caught error
	for range 20 {
		c.Step()
		if caught = mon.Check(c); caught != nil {
			break
		}
	}
	require.ErrorIs(t, caught, ErrWrongValue)
	require.Contains(t, caught.Error(), "gauges@n1 at "+gen.String())
	v, ok := c.View("n2", "n1", "gauges")
	require.True(t, ok)
	require.Equal(t, gen, v.Generation, "the wrong value is at the owner's generation")

	// A new incarnation of the owner sends full snapshots, which overwrite
	// the wrong views: a check of the end state alone sees nothing.
	require.NoError(t, c.RestartWith("n1", SimRestart{KeepValue: true}))
	require.NoError(t, c.Settle(100))
	require.NoError(t, c.CheckConverged())
}

// TestMonitorCatchesReusedGeneration: an owner that publishes a generation
// it had already published with another value (a restore from an envelope
// that lost its last save, then a different write) is reported.
func TestMonitorCatchesReusedGeneration(t *testing.T) {
	c := newInternalSim(t, SimConfig{Nodes: 2, States: SimCounter})
	_, err := c.MutateCounter("n1", dstate.Default, func(x *Counter) { x.Count = 1 })
	require.NoError(t, err)
	saved := c.nodes["n1"].store.m["counter"]
	_, err = c.MutateCounter("n1", dstate.Default, func(x *Counter) { x.Count = 2 })
	require.NoError(t, err)
	require.NoError(t, c.HistoryError())

	c.nodes["n1"].store.m["counter"] = saved // the last save is lost
	require.NoError(t, c.RestartWith("n1", SimRestart{Restore: true}))
	_, err = c.MutateCounter("n1", dstate.Default, func(x *Counter) { x.Count = 7 })
	require.NoError(t, err)
	require.ErrorIs(t, NewGenerationMonitor().Check(c), ErrWrongValue)
}

// TestRestoreRestartKeepsGenerationAndValue: a node restarted with
// Restore comes back through Engine.Restore at the generation and value of
// its last save; after an upgrade whose storage version it cannot read,
// it starts a new, higher incarnation with an empty value.
func TestRestoreRestartKeepsGenerationAndValue(t *testing.T) {
	c := newInternalSim(t, SimConfig{Nodes: 3})
	mon := NewGenerationMonitor()
	for i := range 3 {
		_, err := c.MutateCounter("n1", dstate.Default, func(x *Counter) { x.Count += int64(i + 1) })
		require.NoError(t, err)
		_, err = c.SetGauge("n1", "k", int64(i), dstate.Default)
		require.NoError(t, err)
	}
	require.NoError(t, c.Settle(100))
	require.NoError(t, mon.Check(c))
	counterGen, gaugesGen := c.Counter("n1").Generation(), c.Gauges("n1").Generation()

	require.NoError(t, c.Crash("n1"))
	require.NoError(t, c.RestartWith("n1", SimRestart{Restore: true}))
	require.Equal(t, counterGen, c.Counter("n1").Generation())
	require.Equal(t, int64(6), c.Counter("n1").State().Value.Count)
	require.Equal(t, gaugesGen, c.Gauges("n1").Generation())
	require.Equal(t, int64(2), c.Gauges("n1").State().Value.Values["k"])
	require.NoError(t, mon.Check(c))
	require.NoError(t, c.Settle(100))
	require.NoError(t, mon.Check(c))

	v2 := CounterState{Version: 2, AlsoReads: 1}
	require.NoError(t, c.RestartWith("n1", SimRestart{Restore: true, Counter: &v2}))
	require.Greater(t, c.Counter("n1").Generation().Incarnation, counterGen.Incarnation)
	require.Zero(t, c.Counter("n1").State().Value.Count)
	require.Equal(t, gaugesGen, c.Gauges("n1").Generation(), "the gauges envelope is still readable")
	require.NoError(t, mon.Check(c))
}

// TestMembershipReachesNodesAtDifferentTimes: with MembershipDelay, a
// crash is known to some nodes before others, and all of them in the end.
func TestMembershipReachesNodesAtDifferentTimes(t *testing.T) {
	c := newInternalSim(t, SimConfig{Nodes: 5, Seed: 7, MembershipDelay: time.Second})
	mon := NewGenerationMonitor()
	require.NoError(t, c.Crash("n1"))
	knows := func(id dstate.NodeID) bool {
		for _, p := range c.Counter(id).PeerStatuses() {
			if p.Node == "n1" {
				return p.Failed != ""
			}
		}
		return false
	}
	disagreed := false
	for range 20 {
		c.Step()
		require.NoError(t, mon.Check(c))
		n := 0
		for _, id := range c.Live() {
			if knows(id) {
				n++
			}
		}
		disagreed = disagreed || (n > 0 && n < len(c.Live()))
		if n == len(c.Live()) {
			break
		}
	}
	require.True(t, disagreed, "some node must learn of the crash before another")
	for _, id := range c.Live() {
		require.True(t, knows(id), "%s never learned that n1 failed", id)
	}
	require.NoError(t, c.Restart("n1"))
	require.NoError(t, c.Settle(200))
	require.NoError(t, mon.Check(c))
}

// TestRollingUpgradeUnderBothMismatchPolicies: while n1 runs wire version
// 2, version-1 nodes cannot read it: under DropAndWait they drop its view
// (which the monitor allows), under KeepStale they keep the last one (at a
// generation and value n1 had). Once every node runs version 2 the
// cluster converges.
func TestRollingUpgradeUnderBothMismatchPolicies(t *testing.T) {
	for _, policy := range []dstate.VersionMismatchPolicy{dstate.DropAndWait, dstate.KeepStale} {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := DefaultSimStateConfig()
			cfg.VersionMismatchPolicy = policy
			c := newInternalSim(t, SimConfig{Nodes: 3, States: SimCounter, CounterConfig: cfg})
			mon := NewGenerationMonitor()
			_, err := c.MutateCounter("n1", dstate.Default, func(x *Counter) { x.Count = 3 })
			require.NoError(t, err)
			require.NoError(t, c.Settle(100))
			require.NoError(t, mon.Check(c))

			v2 := CounterState{Version: 2, AlsoReads: 1}
			require.NoError(t, c.RestartWith("n1", SimRestart{Restore: true, Counter: &v2}))
			_, err = c.MutateCounter("n1", dstate.Default, func(x *Counter) { x.Count = 9 })
			require.NoError(t, err)
			for range 30 {
				c.Step()
				require.NoError(t, mon.Check(c))
			}
			_, held := c.View("n2", "n1", "counter")
			require.Equal(t, policy == dstate.KeepStale, held, "n2's view of n1 under %s", policy)

			for _, id := range []dstate.NodeID{"n2", "n3"} {
				require.NoError(t, c.RestartWith(id, SimRestart{Restore: true, Counter: &v2}))
				require.NoError(t, mon.Check(c))
			}
			for i := 0; i < 200 && !c.Converged(); i++ {
				c.Step()
				require.NoError(t, mon.Check(c))
			}
			require.NoError(t, c.CheckConverged())
		})
	}
}
