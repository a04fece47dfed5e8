package dstatetest_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// newSim builds a cluster or fails the test; it logs the seed so a failure
// can be replayed.
func newSim(t testing.TB, cfg dstatetest.SimConfig) *dstatetest.SimCluster {
	t.Helper()
	c, err := dstatetest.NewExampleSimCluster(cfg)
	if err != nil {
		t.Fatalf("NewExampleSimCluster: %v", err)
	}
	return c
}

func settle(t testing.TB, c *dstatetest.SimCluster, maxTicks int) {
	t.Helper()
	if err := c.Settle(maxTicks); err != nil {
		t.Fatalf("Settle(%d): %v (seed %d)", maxTicks, err, c.Seed())
	}
}

func incr(by int64) func(*dstatetest.Counter) {
	return func(c *dstatetest.Counter) { c.Count += by }
}

// must fails the test on a mutation's error and returns its generation:
// must(t)(c.MutateCounter(...)).
func must(t testing.TB) func(dstate.Generation, error) dstate.Generation {
	t.Helper()
	return func(g dstate.Generation, err error) dstate.Generation {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
}

func mustView(t testing.TB, c *dstatetest.SimCluster, observer, owner dstate.NodeID, state string) dstatetest.SimView {
	t.Helper()
	v, ok := c.View(observer, owner, state)
	if !ok {
		t.Fatalf("%s has no %s view of %s, want one", observer, state, owner)
	}
	return v
}

func metrics(t testing.TB, c *dstatetest.SimCluster, id dstate.NodeID, state string) dstate.SyncMetrics {
	t.Helper()
	m, err := c.Metrics(id, state)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// noPeriodic is active push without a periodic sync: only the protocol's
// own repairs (gaps, pulls, joins) can fix what the network loses.
func noPeriodic() dstate.StateConfig {
	return dstate.StateConfig{SyncStrategy: dstate.ActivePushStrategy(), PullTimeout: time.Second}
}

func countTrace(c *dstatetest.SimCluster, substr string) int {
	n := 0
	for _, l := range c.Trace() {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

func TestScenarioHappyPathReplication(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{Seed: 1, Nodes: 4})
	settle(t, c, 5)
	want := map[dstate.NodeID]dstate.Generation{}
	for i, id := range c.Live() {
		for range i + 1 {
			want[id] = must(t)(c.MutateCounter(id, dstate.Default, incr(10)))
		}
		must(t)(c.SetGauge(id, "load", int64(i), dstate.Default))
	}
	c.Step() // one tick of latency on a perfect network
	if err := c.CheckConverged(); err != nil {
		t.Fatalf("after one tick: %v", err)
	}
	for _, obs := range c.Live() {
		for i, own := range c.Live() {
			v := mustView(t, c, obs, own, "counter")
			if v.Generation != want[own] || v.Value != fmt.Sprint(10*(i+1)) {
				t.Errorf("%s's counter view of %s = %s %s, want %s %d", obs, own, v.Generation, v.Value, want[own], 10*(i+1))
			}
			g := mustView(t, c, obs, own, "gauges")
			if g.Value != fmt.Sprintf("{load=%d}", i) {
				t.Errorf("%s's gauges view of %s = %s, want {load=%d}", obs, own, g.Value, i)
			}
		}
	}
	if m := metrics(t, c, "n2", "gauges"); m.DeltasReceived != 3 {
		t.Errorf("n2 applied %d gauge deltas, want 3 (one per peer)", m.DeltasReceived)
	}
}

func TestScenarioDeltaGapRequestsSnapshot(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{Seed: 2, States: dstatetest.SimGauges, GaugesConfig: noPeriodic(), KeepTrace: true})
	settle(t, c, 5)
	c.BlockOneWay([]dstate.NodeID{"n1"}, []dstate.NodeID{"n2"})
	must(t)(c.SetGauge("n1", "a", 1, dstate.Default)) // n2 misses age 1
	c.Step()
	c.Heal()
	g2 := must(t)(c.SetGauge("n1", "b", 2, dstate.Default)) // age 2: a gap for n2
	c.Run(3)                                                // delta, request, snapshot
	if err := c.CheckConverged(); err != nil {
		t.Fatal(err)
	}
	if v := mustView(t, c, "n2", "n1", "gauges"); v.Generation != g2 || v.Value != "{a=1 b=2}" {
		t.Errorf("n2's view of n1 = %s %s, want %s {a=1 b=2}", v.Generation, v.Value, g2)
	}
	m2 := metrics(t, c, "n2", "gauges")
	if m2.AgeGaps != 1 || m2.SnapshotRequestsSent != 1 || m2.DeltasReceived != 0 {
		t.Errorf("n2: gaps %d, requests %d, deltas applied %d; want 1, 1, 0", m2.AgeGaps, m2.SnapshotRequestsSent, m2.DeltasReceived)
	}
	if m3 := metrics(t, c, "n3", "gauges"); m3.DeltasReceived != 2 || m3.SnapshotRequestsSent != 0 {
		t.Errorf("n3: deltas applied %d, requests %d; want 2, 0", m3.DeltasReceived, m3.SnapshotRequestsSent)
	}
	req := countTrace(c, "n2->n1 RequestSnapshot(gauges by n2)")
	snap := countTrace(c, "n1->n2 FullSnapshot(gauges from n1 "+g2.String())
	if req != 1 || snap != 1 {
		t.Errorf("trace has %d requests n2->n1 and %d snapshots n1->n2 at %s, want 1 and 1", req, snap, g2)
	}
}

func TestScenarioDropsRepairedByPeriodicSync(t *testing.T) {
	for _, tc := range []struct {
		name     string
		periodic time.Duration
		wantOK   bool
	}{
		{"with periodic sync", time.Second, true},
		{"without periodic sync", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := noPeriodic()
			cfg.SyncStrategy.PeriodicFullSync = tc.periodic
			c := newSim(t, dstatetest.SimConfig{Seed: 3, States: dstatetest.SimCounter, CounterConfig: cfg})
			settle(t, c, 5)
			if err := c.SetFaults(dstatetest.Faults{Drop: 1}); err != nil {
				t.Fatal(err)
			}
			var g dstate.Generation
			for range 5 {
				g = must(t)(c.MutateCounter("n1", dstate.Default, incr(1)))
			}
			c.Step()
			if v := mustView(t, c, "n2", "n1", "counter"); v.Generation.Age != 0 {
				t.Fatalf("n2 saw n1 at %s through a network that drops everything", v.Generation)
			}
			if err := c.SetFaults(dstatetest.Faults{}); err != nil {
				t.Fatal(err)
			}
			before := metrics(t, c, "n2", "counter").SnapshotsReceived
			err := c.Settle(15) // one 10-tick period and latency
			if !tc.wantOK {
				if !errors.Is(err, dstatetest.ErrNotConverged) {
					t.Fatalf("Settle without periodic sync = %v, want ErrNotConverged", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v := mustView(t, c, "n2", "n1", "counter"); v.Generation != g || v.Value != "5" {
				t.Errorf("n2's view of n1 = %s %s, want %s 5", v.Generation, v.Value, g)
			}
			if got := metrics(t, c, "n2", "counter").SnapshotsReceived; got <= before {
				t.Errorf("n2 accepted %d snapshots, want more than %d", got, before)
			}
			if s := c.Stats(); s.Dropped != 10 {
				t.Errorf("dropped %d messages, want 10 (5 mutations to 2 peers)", s.Dropped)
			}
		})
	}
}

func TestScenarioDuplicatesAndReorderingAreHarmless(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{
		Seed: 4, Nodes: 3, CounterConfig: noPeriodic(), GaugesConfig: noPeriodic(),
		Faults: dstatetest.Faults{Duplicate: 0.5, Reorder: 0.5, MaxReorderTicks: 5},
	})
	mon := dstatetest.NewGenerationMonitor()
	for i := range 100 {
		id := c.Live()[i%3]
		must(t)(c.MutateCounter(id, dstate.Default, incr(1)))
		must(t)(c.SetGauge(id, fmt.Sprintf("k%d", i%7), int64(i), dstate.Default))
		c.Step()
		if err := mon.Check(c); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, c, 100)
	s := c.Stats()
	if s.Duplicated == 0 || s.Reordered == 0 || s.Dropped != 0 {
		t.Fatalf("stats %+v: want duplicates and reordering, no drops", s)
	}
	var discarded, gaps uint64
	for _, id := range c.Live() {
		for _, st := range c.States() {
			m := metrics(t, c, id, st)
			discarded += m.StaleDiscarded
			gaps += m.AgeGaps
		}
	}
	if discarded == 0 || gaps == 0 {
		t.Errorf("stale discarded %d, gaps %d: want both (duplicates are discarded, reordered deltas repaired)", discarded, gaps)
	}
}

func TestScenarioPartitionAndHeal(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{Seed: 5, Nodes: 5, States: dstatetest.SimCounter})
	settle(t, c, 5)
	c.Partition([]dstate.NodeID{"n1", "n2"}, []dstate.NodeID{"n3", "n4", "n5"})
	g1 := must(t)(c.MutateCounter("n1", dstate.Default, incr(1)))
	g4 := must(t)(c.MutateCounter("n4", dstate.Default, incr(4)))
	c.Run(30) // periodic syncs fire, but cannot cross
	for _, tc := range []struct {
		obs, own dstate.NodeID
		want     uint64
	}{{"n2", "n1", g1.Age}, {"n3", "n1", 0}, {"n5", "n4", g4.Age}, {"n1", "n4", 0}} {
		if v := mustView(t, c, tc.obs, tc.own, "counter"); v.Generation.Age != tc.want {
			t.Errorf("partitioned: %s sees %s at age %d, want %d", tc.obs, tc.own, v.Generation.Age, tc.want)
		}
	}
	if c.Converged() {
		t.Fatal("converged across a partition")
	}
	if s := c.Stats(); s.Blocked == 0 {
		t.Fatalf("stats %+v: want blocked messages", s)
	}
	c.Heal()
	settle(t, c, 25) // repaired by the next periodic sync
	if v := mustView(t, c, "n3", "n1", "counter"); v.Generation != g1 {
		t.Errorf("healed: n3 sees n1 at %s, want %s", v.Generation, g1)
	}

	// One way: n1 can hear n2, n2 cannot hear n1.
	c.BlockOneWay([]dstate.NodeID{"n1"}, []dstate.NodeID{"n2"})
	g1 = must(t)(c.MutateCounter("n1", dstate.Default, incr(1)))
	g2 := must(t)(c.MutateCounter("n2", dstate.Default, incr(1)))
	c.Run(2)
	if v := mustView(t, c, "n1", "n2", "counter"); v.Generation != g2 {
		t.Errorf("one-way: n1 sees n2 at %s, want %s", v.Generation, g2)
	}
	if v := mustView(t, c, "n2", "n1", "counter"); v.Generation == g1 {
		t.Errorf("one-way: n2 sees n1 at %s through a cut link", v.Generation)
	}
	c.Heal()
	settle(t, c, 25)
}

func TestScenarioCrashRestartNewIncarnationWins(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{Seed: 6, Nodes: 3})
	var old dstate.Generation
	for range 50 {
		old = must(t)(c.MutateCounter("n3", dstate.Default, incr(1)))
	}
	settle(t, c, 5)
	if err := c.Crash("n3"); err != nil {
		t.Fatal(err)
	}
	c.Run(20)
	if v := mustView(t, c, "n1", "n3", "counter"); v.Generation != old || v.Value != "50" {
		t.Fatalf("n1's view of crashed n3 = %s %s, want the last one %s 50", v.Generation, v.Value, old)
	}
	q, err := c.Query("n1", "counter", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q.Stale, []dstate.NodeID{"n3"}) {
		t.Errorf("n1's query after n3 crashed: stale %v, want [n3]", q.Stale)
	}
	if !c.Converged() {
		t.Errorf("the running nodes should agree: %v", c.CheckConverged())
	}
	if err := c.Restart("n3"); err != nil {
		t.Fatal(err)
	}
	fresh := c.Counter("n3").Generation()
	if fresh.Incarnation <= old.Incarnation || fresh.Age != 0 {
		t.Fatalf("restarted n3 at %s, want a larger incarnation than %s and age 0", fresh, old)
	}
	settle(t, c, 5)
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		if v := mustView(t, c, obs, "n3", "counter"); v.Generation != fresh || v.Value != "0" {
			t.Errorf("%s's view of restarted n3 = %s %s, want %s 0 (new incarnation beats age %d)", obs, v.Generation, v.Value, fresh, old.Age)
		}
	}
	if c.Epoch("n3") != 2 {
		t.Errorf("n3 epoch %d, want 2", c.Epoch("n3"))
	}
}

func TestScenarioLeaveLateMessagesIgnoredRejoin(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{Seed: 7, Nodes: 3, Faults: dstatetest.Faults{Delay: 3}})
	settle(t, c, 10)
	for i := 0; i < 40 && c.InFlight() > 0; i++ { // let the periodic syncs land
		c.Step()
	}
	must(t)(c.MutateCounter("n1", dstate.Default, incr(7)))
	must(t)(c.SetGauge("n1", "x", 7, dstate.Default))
	if c.InFlight() != 4 {
		t.Fatalf("%d messages in flight, want 4 (2 states to 2 peers)", c.InFlight())
	}
	if err := c.Leave("n1"); err != nil {
		t.Fatal(err)
	}
	c.Run(5) // the late messages arrive
	for _, obs := range []dstate.NodeID{"n2", "n3"} {
		for _, st := range c.States() {
			if v, ok := c.View(obs, "n1", st); ok {
				t.Errorf("%s holds a %s view of departed n1: %+v", obs, st, v)
			}
			if m := metrics(t, c, obs, st); m.DepartedIgnored != 1 {
				t.Errorf("%s %s ignored %d messages from n1, want 1", obs, st, m.DepartedIgnored)
			}
		}
		if !c.Counter(obs).IsDeparted("n1") {
			t.Errorf("%s does not consider n1 departed", obs)
		}
	}
	settle(t, c, 1) // n1 is not live: n2 and n3 agree
	if err := c.Leave("n1"); !errors.Is(err, dstatetest.ErrNodeState) {
		t.Errorf("second Leave = %v, want ErrNodeState", err)
	}
	if err := c.RestartWith("n1", dstatetest.SimRestart{KeepValue: true}); err != nil {
		t.Fatal(err)
	}
	settle(t, c, 10)
	if v := mustView(t, c, "n2", "n1", "counter"); v.Value != "7" || v.Generation != c.Counter("n1").Generation() {
		t.Errorf("n2's view of rejoined n1 = %s %s, want %s 7", v.Generation, v.Value, c.Counter("n1").Generation())
	}
	if c.Counter("n2").IsDeparted("n1") {
		t.Error("n2 still considers rejoined n1 departed")
	}
}

func TestScenarioChangeFeedLazyPull(t *testing.T) {
	feed := dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy(), PullTimeout: time.Second}
	c := newSim(t, dstatetest.SimConfig{Seed: 8, Nodes: 3, States: dstatetest.SimCounter, CounterConfig: feed, KeepTrace: true})
	settle(t, c, 5) // the join snapshots
	base := mustView(t, c, "n2", "n1", "counter").Generation
	must(t)(c.MutateCounter("n1", dstate.Default, incr(1)))
	g := must(t)(c.MutateCounter("n1", dstate.Default, incr(1)))
	c.Run(11) // one batch interval (10 ticks) and the latency
	for _, obs := range []dstate.NodeID{"n2", "n3"} {
		v := mustView(t, c, obs, "n1", "counter")
		if v.Generation != base || v.Pending != g {
			t.Fatalf("%s's view of n1 = %s pending %s, want %s pending %s", obs, v.Generation, v.Pending, base, g)
		}
	}
	if n := countTrace(c, "BatchedChangeFeed(from n1: counter@n1 "+g.String()+")"); n != 2 {
		t.Errorf("%d deliveries of one deduplicated feed from n1, want 2", n)
	}
	if c.Converged() {
		t.Fatal("converged before anyone pulled")
	}
	q, err := c.Query("n2", "counter", -1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q.Stale, []dstate.NodeID{"n1"}) || len(q.Actions) != 1 || q.Actions[0].Message.Kind != dstate.KindRequestSnapshot {
		t.Fatalf("n2's query: stale %v actions %v, want [n1] and one snapshot request", q.Stale, q.Actions)
	}
	c.Run(2) // request, snapshot
	if v := mustView(t, c, "n2", "n1", "counter"); v.Generation != g || !v.Pending.IsZero() || v.Value != "2" {
		t.Errorf("n2's view of n1 after the pull = %s pending %s value %s, want %s, none, 2", v.Generation, v.Pending, v.Value, g)
	}
	if v := mustView(t, c, "n3", "n1", "counter"); v.Generation != base {
		t.Errorf("n3 did not query, yet its view of n1 moved to %s", v.Generation)
	}
	if _, err := c.Query("n3", "counter", -1); err != nil {
		t.Fatal(err)
	}
	settle(t, c, 3)
}

func TestScenarioStressManyMutations(t *testing.T) {
	t.Run("1000 sequential mutations", func(t *testing.T) {
		c := newSim(t, dstatetest.SimConfig{Seed: 9, Nodes: 3, States: dstatetest.SimCounter,
			Faults: dstatetest.Faults{Reorder: 0.2, Duplicate: 0.1}})
		for range 1000 {
			must(t)(c.MutateCounter("n1", dstate.Default, incr(1)))
		}
		settle(t, c, 30)
		if v := mustView(t, c, "n3", "n1", "counter"); v.Generation.Age != 1000 || v.Value != "1000" {
			t.Errorf("n3's view of n1 = %s %s, want age 1000, value 1000", v.Generation, v.Value)
		}
	})
	t.Run("10 nodes x 50 mutations", func(t *testing.T) {
		c := newSim(t, dstatetest.SimConfig{Seed: 10, Nodes: 10, Faults: dstatetest.Faults{Drop: 0.05, Reorder: 0.1}})
		for i := range 50 {
			for _, id := range c.Live() {
				must(t)(c.SetGauge(id, fmt.Sprintf("k%d", i%5), int64(i), dstate.Default))
				if i%5 == 0 {
					must(t)(c.MutateCounter(id, dstate.Default, incr(1)))
				}
			}
			c.Step()
		}
		settle(t, c, 200)
		for _, id := range c.Live() {
			if g := c.Gauges(id).Generation(); g.Age != 50 {
				t.Errorf("%s gauges at %s, want age 50", id, g)
			}
		}
	})
}

func TestScenarioChaosAllFaults(t *testing.T) {
	for seed := uint64(11); seed < 16; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			c := newSim(t, dstatetest.SimConfig{Seed: seed, Nodes: 6,
				Faults: dstatetest.Faults{Drop: 0.2, Duplicate: 0.1, Reorder: 0.3, Corrupt: 0.05, Delay: 1}})
			mon := dstatetest.NewGenerationMonitor()
			for i := range 200 {
				live := c.Live()
				id := live[i%len(live)]
				switch i % 40 {
				case 10:
					c.Partition(live[:2], live[2:])
				case 17:
					if err := c.Crash(live[len(live)-1]); err != nil {
						t.Fatal(err)
					}
				case 25:
					c.Heal()
				case 33:
					if err := c.Restart(c.Nodes()[len(c.Nodes())-1]); err != nil {
						t.Fatal(err)
					}
				default:
					must(t)(c.MutateCounter(id, dstate.Default, incr(1)))
					must(t)(c.SetGauge(id, "k", int64(i), dstate.Default))
				}
				c.Step()
				if err := mon.Check(c); err != nil {
					t.Fatalf("%v (seed %d)", err, seed)
				}
			}
			c.Heal()
			settle(t, c, 500)
			s := c.Stats()
			if s.Corrupted == 0 || s.IntegrityRejected+s.DecodeErrors == 0 || s.Dropped == 0 || s.Duplicated == 0 {
				t.Errorf("stats %+v: want every fault to have happened and corrupt copies rejected", s)
			}
		})
	}
	t.Run("unchecked corruption reaches the engines", func(t *testing.T) {
		c := newSim(t, dstatetest.SimConfig{Seed: 16, Nodes: 3,
			Faults: dstatetest.Faults{Corrupt: 0.5, CorruptUnchecked: true}})
		for i := range 100 {
			must(t)(c.SetGauge("n1", "k", int64(i), dstate.Default))
			c.Step()
		}
		var failures uint64
		for _, id := range c.Live() {
			failures += metrics(t, c, id, "gauges").SyncFailures
		}
		if s := c.Stats(); s.DecodeErrors == 0 || failures == 0 || s.IntegrityRejected != 0 {
			t.Errorf("stats %+v, engine sync failures %d: want wire decode errors and engine decode failures, no checksum rejections", s, failures)
		}
	})
}

func TestScenarioRollingUpgrade(t *testing.T) {
	v := func(version, alsoReads uint32) (*dstatetest.CounterState, *dstatetest.GaugesState) {
		return &dstatetest.CounterState{Version: version, AlsoReads: alsoReads}, &dstatetest.GaugesState{Version: version, AlsoReads: alsoReads}
	}
	wireOf := func(c *dstatetest.SimCluster, obs, own dstate.NodeID) uint32 {
		o, ok := c.Counter(obs).Views().Get(own)
		if !ok {
			return 0
		}
		return o.WireVersion
	}
	for _, policy := range []dstate.VersionMismatchPolicy{dstate.KeepStale, dstate.DropAndWait} {
		t.Run(policy.String(), func(t *testing.T) {
			cfg := dstatetest.DefaultSimStateConfig()
			cfg.VersionMismatchPolicy = policy
			newCluster := func(seed uint64) *dstatetest.SimCluster {
				c := newSim(t, dstatetest.SimConfig{Seed: seed, Nodes: 3, CounterConfig: cfg, GaugesConfig: cfg,
					Faults: dstatetest.Faults{Reorder: 0.2}})
				for _, id := range c.Live() {
					must(t)(c.MutateCounter(id, dstate.Default, incr(1)))
					must(t)(c.SetGauge(id, "k", 1, dstate.Default))
				}
				settle(t, c, 10)
				return c
			}

			t.Run("two phases converge at every step", func(t *testing.T) {
				c := newCluster(20)
				for _, phase := range [][2]uint32{{1, 2}, {2, 1}} { // read both then write v2
					for _, id := range c.Nodes() {
						cs, gs := v(phase[0], phase[1])
						if err := c.RestartWith(id, dstatetest.SimRestart{KeepValue: true, Counter: cs, Gauges: gs}); err != nil {
							t.Fatal(err)
						}
						must(t)(c.SetGauge(id, "k", 2, dstate.Default))
						settle(t, c, 30)
					}
				}
				if w := wireOf(c, "n1", "n3"); w != 2 {
					t.Errorf("n1's view of n3 has wire version %d, want 2", w)
				}
				if v := mustView(t, c, "n1", "n2", "counter"); v.Value != "1" {
					t.Errorf("n1's view of n2 = %s, want the kept value 1", v.Value)
				}
			})

			t.Run("skipping the read phase", func(t *testing.T) {
				c := newCluster(21)
				before := mustView(t, c, "n2", "n1", "counter")
				cs, gs := v(2, 1)
				if err := c.RestartWith("n1", dstatetest.SimRestart{KeepValue: true, Counter: cs, Gauges: gs}); err != nil {
					t.Fatal(err)
				}
				must(t)(c.MutateCounter("n1", dstate.Default, incr(1)))
				must(t)(c.SetGauge("n1", "k", 9, dstate.Default))
				err := c.Settle(30)
				if !errors.Is(err, dstatetest.ErrNotConverged) || !(strings.Contains(err.Error(), "@n1 ") || strings.Contains(err.Error(), "view of n1")) {
					t.Fatalf("Settle = %v, want ErrNotConverged about n1", err)
				}
				if v := mustView(t, c, "n1", "n2", "counter"); v.Value != "1" {
					t.Errorf("upgraded n1 reads old n2: %s, want 1", v.Value)
				}
				after, ok := c.View("n2", "n1", "counter")
				switch policy {
				case dstate.KeepStale:
					if !ok || after.Generation != before.Generation || after.Value != before.Value {
						t.Errorf("keep-stale: n2's view of n1 = %+v (present %v), want the last good %s %s", after, ok, before.Generation, before.Value)
					}
				case dstate.DropAndWait:
					if ok {
						t.Errorf("drop-and-wait: n2 still holds a view of n1: %+v", after)
					}
				}
				if m := metrics(t, c, "n2", "gauges"); m.SyncFailures == 0 {
					t.Error("n2 counted no sync failure for n1's unreadable messages")
				}
				for _, id := range []dstate.NodeID{"n2", "n3"} { // finish the upgrade
					if err := c.RestartWith(id, dstatetest.SimRestart{KeepValue: true, Counter: cs, Gauges: gs}); err != nil {
						t.Fatal(err)
					}
				}
				settle(t, c, 30)
				if v := mustView(t, c, "n2", "n1", "gauges"); v.Value != "{k=9}" {
					t.Errorf("after the upgrade n2's view of n1 = %s, want {k=9}", v.Value)
				}
			})
		})
	}
}
