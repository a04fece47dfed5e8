package dstatetest_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

func TestSimClusterEmptyAndOneNode(t *testing.T) {
	sim, err := dstatetest.NewSimCluster(LoadState{}, Load{}, dstatetest.SimConfig{Seed: 1, Empty: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := sim.Nodes(); len(n) != 0 || !sim.Idle() || !sim.Converged() {
		t.Fatalf("empty cluster: nodes %v, idle %v, converged %v", n, sim.Idle(), sim.Converged())
	}
	sim.Run(3)
	a, err := sim.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Mutate(a, dstate.Default, func(l *Load) { l.Jobs = 3 }); err != nil {
		t.Fatal(err)
	}
	if err := sim.RunUntilIdle(20); err != nil {
		t.Fatal(err)
	}
	b, err := sim.AddNodeWith(dstatetest.SimRestart{States: []dstatetest.SimStateStart{sim.Start(Load{Jobs: 9, Queue: "q"})}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Settle(100); err != nil {
		t.Fatal(err)
	}
	if v, _, ok := sim.Value(a, b); !ok || v != (Load{Jobs: 9, Queue: "q"}) {
		t.Errorf("%s sees %s = %+v, %v; want the start value", a, b, v, ok)
	}
	if v, _, ok := sim.Value(b, a); !ok || v.Jobs != 3 {
		t.Errorf("%s sees %s = %+v, %v; want 3 jobs", b, a, v, ok)
	}

	one, err := dstatetest.NewSimCluster(LoadState{}, Load{}, dstatetest.SimConfig{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := one.Mutate("n1", dstate.Immediate, func(l *Load) { l.Jobs++ }); err != nil {
		t.Fatal(err)
	}
	if err := one.Settle(10); err != nil {
		t.Fatal(err)
	}
	if err := one.RunUntilIdle(10); err != nil {
		t.Fatal(err)
	}
	if _, err := dstatetest.NewSimCluster(LoadState{}, Load{}, dstatetest.SimConfig{Empty: true, Nodes: 2}); err == nil {
		t.Error("Empty with Nodes: no error")
	}
	if _, err := dstatetest.NewSimCluster(LoadState{}, Load{}, dstatetest.SimConfig{States: dstatetest.SimCounter}); err == nil {
		t.Error("an example-state field: no error")
	}
}

func TestSimClusterIdle(t *testing.T) {
	sim, err := dstatetest.NewSimCluster(LoadState{}, Load{}, dstatetest.SimConfig{Seed: 3, Nodes: 3, Faults: dstatetest.Faults{Delay: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if sim.Idle() {
		t.Fatal("idle while the join snapshots are on the wire")
	}
	if err := sim.RunUntilIdle(50); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Mutate("n2", dstate.Default, func(l *Load) { l.Jobs = 1 }); err != nil {
		t.Fatal(err)
	}
	if p := sim.Pending(); p.Messages == 0 {
		t.Fatalf("pending after a mutation = %s, want messages", p)
	}
	if err := sim.RunUntilIdle(1); !errors.Is(err, dstatetest.ErrNotIdle) {
		t.Fatalf("RunUntilIdle(1) = %v, want ErrNotIdle", err)
	}
	if err := sim.RunUntilIdle(50); err != nil {
		t.Fatal(err)
	}
	if !sim.Converged() {
		t.Fatal(sim.CheckConverged())
	}
}

func TestSimClusterInterceptor(t *testing.T) {
	var seen []dstate.MessageKind
	cut := func(m dstatetest.SimMessage) dstatetest.SimFate {
		switch {
		case m.From == "n1" && m.To == "n2" && m.State == "gauges":
			seen = append(seen, m.Kind)
			return dstatetest.SimFate{Drop: true}
		case m.From == "n1" && m.To == "n3":
			return dstatetest.SimFate{NoFaults: true, Delay: 2} // spared the 100 % drop
		}
		return dstatetest.SimFate{}
	}
	sim, err := dstatetest.NewDeltaSimCluster(dstatetest.GaugesState{}, dstatetest.NewGauges(), dstatetest.SimConfig{Seed: 5, Nodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetFormat(dstatetest.GaugesView.String)
	if err := sim.Settle(20); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetFaults(dstatetest.Faults{Drop: 1}); err != nil {
		t.Fatal(err)
	}
	sim.SetInterceptor(cut)
	gen, err := sim.MutateDelta("n1", dstatetest.Set("a", 1))
	if err != nil {
		t.Fatal(err)
	}
	sim.Run(5)
	if _, g, _ := sim.Value("n3", "n1"); g != gen {
		t.Errorf("n3 holds n1 at %s, want %s (the link spared the faults)", g, gen)
	}
	if _, g, _ := sim.Value("n2", "n1"); g == gen {
		t.Errorf("n2 holds n1 at %s through an intercepted link", g)
	}
	if len(seen) == 0 || seen[0] != dstate.KindDeltaUpdate || sim.Stats().Intercepted == 0 {
		t.Errorf("intercepted kinds %v, stats %+v", seen, sim.Stats())
	}
	sim.SetInterceptor(nil)
	if err := sim.SetFaults(dstatetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := sim.Settle(100); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := sim.Value("n2", "n1"); v["a"] != 1 {
		t.Errorf("n2 sees n1 = %v after healing", v)
	}
}

func TestSimClusterStartDef(t *testing.T) {
	sim, err := dstatetest.NewDeltaSimCluster(dstatetest.GaugesState{}, dstatetest.NewGauges(), dstatetest.SimConfig{Seed: 9, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	g := dstatetest.NewGauges()
	g.Values["x"], g.Total = 5, 5
	id, err := sim.AddNodeWith(dstatetest.SimRestart{States: []dstatetest.SimStateStart{sim.StartDef(dstatetest.GaugesState{Version: 2, AlsoReads: 1}, g)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, gv := sim.WireVersions(id); gv != 2 {
		t.Errorf("%s writes gauges version %d, want 2", id, gv)
	}
	if e := sim.Engine(id); e == nil || e.Definition().WireVersion() != 2 {
		t.Errorf("engine of %s: %v", id, e)
	}
	// The old nodes cannot read version 2 but keep what they had (KeepStale);
	// the new one reads version 1.
	sim.Run(20)
	if v, _, ok := sim.Value(id, "n1"); !ok || v == nil {
		t.Errorf("%s holds no view of n1", id)
	}
	if v, _, _ := sim.Value(id, id); v["x"] != 5 {
		t.Errorf("%s's own view = %v, want x=5", id, v)
	}
	if err := sim.RestartWith(id, dstatetest.SimRestart{KeepValue: true}); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := sim.Value(id, id); v["x"] != 5 {
		t.Errorf("after a restart keeping the value, own view = %v", v)
	}
	if _, gv := sim.WireVersions(id); gv != 2 {
		t.Errorf("a restart changed the node's definition to version %d", gv)
	}
}

// With DeltaRuns, the deltas one node sends in one tick reach each peer as
// one run (dstate.Engine.HandleDeltaRun): they apply in sequence, with no
// gap and no snapshot pulled, and every view ends at the owner's value.
func TestSimDeltaRunsApplyInSequence(t *testing.T) {
	sim, err := dstatetest.NewDeltaSimCluster(dstatetest.GaugesState{}, dstatetest.NewGauges(),
		dstatetest.SimConfig{Seed: 3, Nodes: 3, DeltaRuns: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Settle(50); err != nil {
		t.Fatal(err)
	}
	before, err := sim.Metrics("n2", "gauges")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := sim.MutateDelta("n1", dstatetest.Set(fmt.Sprint("k", i), int64(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.RunUntilIdle(50); err != nil {
		t.Fatal(err)
	}
	if got := sim.Stats().InRuns; got < 20 {
		t.Errorf("%d messages delivered in runs, want the 10 deltas to each of 2 peers", got)
	}
	want, _, _ := sim.Value("n1", "n1")
	for _, obs := range []dstate.NodeID{"n2", "n3"} {
		v, _, ok := sim.Value(obs, "n1")
		if !ok || v.String() != want.String() {
			t.Errorf("%s sees n1 = %s, want %s", obs, v, want)
		}
	}
	after, err := sim.Metrics("n2", "gauges")
	if err != nil {
		t.Fatal(err)
	}
	if d := after.DeltasReceived - before.DeltasReceived; d != 10 || after.AgeGaps != before.AgeGaps || after.SnapshotsReceived != before.SnapshotsReceived {
		t.Errorf("n2: %d deltas, gaps %d → %d, snapshots %d → %d; want 10 deltas, no gap, no snapshot",
			d, before.AgeGaps, after.AgeGaps, before.SnapshotsReceived, after.SnapshotsReceived)
	}
}
