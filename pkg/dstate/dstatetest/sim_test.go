package dstatetest_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

func TestNewSimClusterRejectsBadConfig(t *testing.T) {
	bad := dstate.DefaultStateConfig()
	bad.PullTimeout = -time.Second
	for _, tc := range []struct {
		name  string
		cfg   dstatetest.SimConfig
		field string
	}{
		{"negative nodes", dstatetest.SimConfig{Nodes: -1}, "SimConfig.Nodes"},
		{"negative tick", dstatetest.SimConfig{Tick: -time.Second}, "SimConfig.Tick"},
		{"unknown states", dstatetest.SimConfig{States: 8}, "SimConfig.States"},
		{"drop above one", dstatetest.SimConfig{Faults: dstatetest.Faults{Drop: 1.5}}, "Faults.Drop"},
		{"negative delay", dstatetest.SimConfig{Faults: dstatetest.Faults{Delay: -1}}, "Faults.Delay"},
		{"bad state config", dstatetest.SimConfig{GaugesConfig: bad}, "GaugesConfig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dstatetest.NewExampleSimCluster(tc.cfg)
			if err == nil || c != nil {
				t.Fatalf("NewExampleSimCluster = %v, %v; want an error naming %s", c, err, tc.field)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func TestSimClusterRejectsOperationsOnWrongNodes(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{States: dstatetest.SimCounter})
	if err := c.Crash("n3"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"mutate unknown", second(c.MutateCounter("n9", dstate.Default, incr(1))), dstatetest.ErrUnknownNode},
		{"mutate crashed", second(c.MutateCounter("n3", dstate.Default, incr(1))), dstatetest.ErrNodeState},
		{"crash crashed", c.Crash("n3"), dstatetest.ErrNodeState},
		{"gauges not simulated", second(c.SetGauge("n1", "k", 1, dstate.Default)), dstatetest.ErrNoSuchState},
		{"query unknown state", second(c.Query("n1", "nope", 0)), dstatetest.ErrNoSuchState},
		{"restart unknown", c.Restart("n9"), dstatetest.ErrUnknownNode},
		{"faults invalid", c.SetFaults(dstatetest.Faults{Reorder: -1}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error, want one")
			}
			if tc.want != nil && !errors.Is(tc.err, tc.want) {
				t.Errorf("error %v, want %v", tc.err, tc.want)
			}
		})
	}
	if got := c.Status("n3"); got != dstatetest.SimDown {
		t.Errorf("n3 status %s, want down", got)
	}
	if got := c.Live(); !slices.Equal(got, []dstate.NodeID{"n1", "n2"}) {
		t.Errorf("Live = %v, want [n1 n2]", got)
	}
	if got := c.Members(); len(got) != 3 {
		t.Errorf("Members = %v, want all three (a crashed node is still a member)", got)
	}
}

func second[T any](_ T, err error) error { return err }

func TestSettleReportsNonConvergenceWithoutHanging(t *testing.T) {
	// PushNone without a periodic sync (non-zero, or the default applies).
	silent := dstate.StateConfig{SyncStrategy: dstate.SyncStrategy{PushMode: dstate.PushNone}, PullTimeout: time.Second}
	c := newSim(t, dstatetest.SimConfig{States: dstatetest.SimCounter, CounterConfig: silent})
	settle(t, c, 3) // the join snapshots
	must(t)(c.MutateCounter("n1", dstate.Default, incr(1)))
	start := c.Tick()
	err := c.Settle(10)
	if !errors.Is(err, dstatetest.ErrNotConverged) {
		t.Fatalf("Settle = %v, want ErrNotConverged", err)
	}
	if got := c.Tick() - start; got != 10 {
		t.Errorf("Settle ran %d ticks, want exactly 10", got)
	}
	for _, want := range []string{"n2 sees counter@n1", "n3 sees counter@n1", "2 differences"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestSimNetworkCarriesEncodedBytes(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{Seed: 1, Faults: dstatetest.Faults{Corrupt: 1}})
	c.Run(3)
	s := c.Stats()
	if s.Sent == 0 || s.Delivered != 0 || s.Corrupted != s.Sent || s.IntegrityRejected+s.DecodeErrors != s.Sent {
		t.Fatalf("stats %+v: want every copy corrupted and rejected by the decoder or the checksum", s)
	}
	if c.Converged() {
		t.Error("converged over a network that corrupts everything")
	}
	if err := c.SetFaults(dstatetest.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Settle(30); err != nil {
		t.Fatalf("after the corruption stopped: %v", err)
	}
}

func TestSimInjectedStaleSnapshotIsDiscarded(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{States: dstatetest.SimCounter})
	g := must(t)(c.MutateCounter("n1", dstate.Default, incr(5)))
	settle(t, c, 5)
	data, _ := dstatetest.CounterState{}.EncodeState(dstatetest.Counter{Count: 99})
	old := &dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "counter", Source: "n1",
		Generation: dstate.Generation{Incarnation: g.Incarnation, Age: 0}, WireVersion: 1, Data: data}
	if err := c.Inject("n1", "n2", old); err != nil {
		t.Fatal(err)
	}
	c.Step()
	if v := mustView(t, c, "n2", "n1", "counter"); v.Generation != g || v.Value != "5" {
		t.Errorf("n2's view of n1 = %s %s after a stale snapshot, want %s 5", v.Generation, v.Value, g)
	}
	if m := metrics(t, c, "n2", "counter"); m.StaleDiscarded != 1 {
		t.Errorf("n2 discarded %d stale messages, want 1", m.StaleDiscarded)
	}
}

func TestSimPartitionBlocksMessagesInFlight(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{States: dstatetest.SimCounter, Faults: dstatetest.Faults{Delay: 2}, KeepTrace: true})
	c.Run(3) // join snapshots land
	must(t)(c.MutateCounter("n1", dstate.Default, incr(1)))
	c.Partition([]dstate.NodeID{"n1"}, []dstate.NodeID{"n2"})
	if !c.Blocked("n1", "n2") || !c.Blocked("n2", "n1") || c.Blocked("n1", "n3") {
		t.Fatal("partition {n1} | {n2} should cut n1<->n2 only")
	}
	c.Run(3)
	if got := countTrace(c, "n1-x>n2 blocked when due"); got != 1 {
		t.Errorf("%d messages n1->n2 blocked when due, want 1", got)
	}
	if c.Stats().Blocked == 0 {
		t.Error("Stats.Blocked is 0")
	}
	if v := mustView(t, c, "n3", "n1", "counter"); v.Generation.Age != 1 {
		t.Errorf("n3 sees n1 at age %d, want 1", v.Generation.Age)
	}
}

func TestSimAddNodeJoinsEveryone(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{Seed: 3})
	settle(t, c, 5)
	id, err := c.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	if id != "n4" {
		t.Fatalf("AddNode = %s, want n4", id)
	}
	must(t)(c.SetGauge(id, "new", 1, dstate.Default))
	settle(t, c, 5)
	if v := mustView(t, c, "n1", "n4", "gauges"); v.Value != "{new=1}" {
		t.Errorf("n1's view of n4 = %s, want {new=1}", v.Value)
	}
	if n := len(c.Views()); n != 2*4*4 {
		t.Errorf("%d views, want %d (2 states x 4 observers x 4 owners)", n, 2*4*4)
	}
}

func TestSimTraceIsDeterministic(t *testing.T) {
	run := func(seed uint64) (uint64, []string) {
		c := newSim(t, dstatetest.SimConfig{Seed: seed, Nodes: 4, KeepTrace: true,
			Faults: dstatetest.Faults{Drop: 0.2, Duplicate: 0.2, Reorder: 0.3}})
		for i := range 30 {
			must(t)(c.MutateCounter(c.Live()[i%4], dstate.Default, incr(1)))
			c.Step()
		}
		settle(t, c, 200)
		return c.TraceHash(), c.Trace()
	}
	h1, t1 := run(7)
	h2, t2 := run(7)
	if h1 != h2 || !slices.Equal(t1, t2) {
		t.Fatalf("seed 7 twice: hashes %#x and %#x, traces equal %v; want identical runs", h1, h2, slices.Equal(t1, t2))
	}
	if h3, _ := run(8); h3 == h1 {
		t.Errorf("seeds 7 and 8 have the same hash %#x", h1)
	}
}

func TestGenerationMonitor(t *testing.T) {
	cfg := dstatetest.DefaultSimStateConfig()
	cfg.VersionMismatchPolicy = dstate.DropAndWait
	c := newSim(t, dstatetest.SimConfig{States: dstatetest.SimCounter, CounterConfig: cfg})
	mon := dstatetest.NewGenerationMonitor()
	check := func(what string) {
		t.Helper()
		if err := mon.Check(c); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	settle(t, c, 5)
	check("settled")
	if err := c.Leave("n3"); err != nil {
		t.Fatal(err)
	}
	check("a view dropped on leave")
	if err := c.Restart("n2"); err != nil {
		t.Fatal(err)
	}
	check("an observer restarted with no views")
	if err := c.Restart("n3"); err != nil {
		t.Fatal(err)
	}
	settle(t, c, 5)
	check("rejoined")

	// A message n2 cannot read makes DropAndWait drop n1's view: a member's
	// view lost.
	unreadable := &dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "counter", Source: "n1",
		Generation: dstate.Generation{Incarnation: 1 << 40}, WireVersion: 99}
	if err := c.Inject("n1", "n2", unreadable); err != nil {
		t.Fatal(err)
	}
	c.Step()
	if _, ok := c.View("n2", "n1", "counter"); ok {
		t.Fatal("n2 kept n1's view after an unreadable snapshot under DropAndWait")
	}
	if err := mon.Check(c); !errors.Is(err, dstatetest.ErrViewLost) {
		t.Fatalf("Check after a dropped view = %v, want ErrViewLost", err)
	}
}
