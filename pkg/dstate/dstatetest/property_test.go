package dstatetest_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// defaultPropertySeeds is how many seeds TestPropertyConvergence runs when
// DSTATE_SEEDS is not set.
const defaultPropertySeeds = 300

// propertySeeds returns the seeds to run: DSTATE_SEED=<seed> runs one,
// DSTATE_SEEDS=<n> runs 1..n, else 1..defaultPropertySeeds (50 with -short).
func propertySeeds(t *testing.T) []uint64 {
	t.Helper()
	if s := os.Getenv("DSTATE_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("DSTATE_SEED=%q: %v", s, err)
		}
		return []uint64{seed}
	}
	n := defaultPropertySeeds
	if testing.Short() {
		n = 50
	}
	if s := os.Getenv("DSTATE_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("DSTATE_SEEDS=%q is not a positive number", s)
		}
		n = v
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

// propertyRun is the outcome of one seeded run.
type propertyRun struct {
	hash     uint64
	nodes    int
	ticks    int64
	settled  int64 // ticks the final settle took
	stats    dstatetest.SimStats
	trace    []string
	restarts int
	restores int // restarts from the persisted envelope (Engine.Restore)
	upgrades int // restarts onto wire version 2
}

// The definitions of a rolling upgrade: version 2 still reads version 1,
// version 1 cannot read version 2.
var (
	counterV2 = dstatetest.CounterState{Version: 2, AlsoReads: 1}
	gaugesV2  = dstatetest.GaugesState{Version: 2, AlsoReads: 1}
)

// runProperty drives one random scenario: 3-10 nodes, a random strategy
// per state (active push, change feed with lazy pull, or no push with pull
// on query; none with a periodic full sync: digests are the only
// anti-entropy), random mutations of both states with random urgencies,
// queries that pull, 30% drops, duplicates, reordering,
// partitions (symmetric and one-way) that come and go, link resets that
// lose what is in flight, crash-restarts, leaves and rejoins, and added
// nodes. After every step and operation the generation monitor checks that
// no view went backwards; at the end every cut is healed, every crashed
// node restarted, a last burst of writes is written and everything in
// flight lost, and with no further write the cluster must converge: the
// states that push by digests alone, the lazy ones when read (a query
// every few ticks, which pulls only views marked stale).
func runProperty(seed uint64, keepTrace bool) (propertyRun, error) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var run propertyRun
	run.nodes = 3 + rng.IntN(8)
	strategy := func() dstate.StateConfig {
		var s dstate.SyncStrategy
		switch rng.IntN(4) {
		case 0, 1:
			s = dstate.ActivePushStrategy()
		case 2:
			s = dstate.FeedLazyPullStrategy()
			s.ChangeFeed.BatchInterval = 300 * time.Millisecond
		default:
			s = dstate.PeriodicOnlyStrategy(0)
			s.PullOnQuery = true
		}
		policy := dstate.KeepStale
		if rng.IntN(2) == 0 {
			policy = dstate.DropAndWait
		}
		return dstate.StateConfig{SyncStrategy: s, PullTimeout: time.Second, VersionMismatchPolicy: policy}
	}
	c, err := dstatetest.NewExampleSimCluster(dstatetest.SimConfig{
		Seed:           seed,
		Nodes:          run.nodes,
		CounterConfig:  strategy(),
		GaugesConfig:   strategy(),
		Faults:         dstatetest.Faults{Drop: 0.3, Duplicate: 0.1, Reorder: 0.2, MaxReorderTicks: 4},
		DigestInterval: time.Second,
		// Every other seed hands the messages due together from one node
		// to another to HandleDeltaRun, as a batch-reading host does.
		DeltaRuns: seed%2 == 1,
		// Membership events reach each node up to a second late, so nodes
		// disagree for a while about who failed, left or joined.
		MembershipDelay: time.Duration(rng.IntN(11)) * 100 * time.Millisecond,
		KeepTrace:       keepTrace,
	})
	if err != nil {
		return run, err
	}
	mon := dstatetest.NewGenerationMonitor()
	fail := func(err error) (propertyRun, error) {
		run.hash, run.ticks, run.stats, run.trace = c.TraceHash(), c.Tick(), c.Stats(), c.Trace()
		return run, err
	}
	pick := func(ids []dstate.NodeID) dstate.NodeID { return ids[rng.IntN(len(ids))] }
	urgency := func() dstate.SyncUrgency {
		switch r := rng.IntN(10); {
		case r < 6:
			return dstate.Default
		case r < 7:
			return dstate.Immediate
		case r < 8:
			return dstate.Suppress
		default:
			return dstate.Delayed(time.Duration(1+rng.IntN(5)) * 100 * time.Millisecond)
		}
	}
	rounds := 40 + rng.IntN(40)
	for range rounds {
		live := c.Live()
		var opErr error
		switch op := rng.IntN(100); {
		case op < 55 && len(live) > 0:
			id := pick(live)
			if rng.IntN(2) == 0 {
				d := int64(1 + rng.IntN(5))
				_, opErr = c.MutateCounter(id, urgency(), func(x *dstatetest.Counter) { x.Count += d })
			} else {
				_, opErr = c.SetGauge(id, fmt.Sprintf("g%d", rng.IntN(4)), int64(rng.IntN(100)), urgency())
			}
		case op < 62 && len(live) > 1:
			opErr = c.Crash(pick(live))
		case op < 70:
			var down []dstate.NodeID
			for _, id := range c.Nodes() {
				if c.Status(id) != dstatetest.SimUp {
					down = append(down, id)
				}
			}
			if len(down) > 0 {
				run.restarts++
				opts := dstatetest.SimRestart{KeepValue: rng.IntN(2) == 0}
				if rng.IntN(2) == 0 {
					// As a host restarts: from the persisted envelope.
					opts.Restore = true
					run.restores++
				}
				opErr = c.RestartWith(pick(down), opts)
			}
		case op < 76:
			members := c.Members()
			rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
			k := 1 + rng.IntN(max(len(members)-1, 1))
			if rng.IntN(3) == 0 {
				c.BlockOneWay(members[:k], members[k:])
			} else {
				c.Partition(members[:k], members[k:])
			}
		case op < 84:
			c.Heal()
		case op < 87 && len(live) > 2:
			opErr = c.Leave(pick(live))
		case op < 89 && len(c.Nodes()) < 10:
			_, opErr = c.AddNode()
		case op < 92 && len(live) > 0:
			// One step of a rolling upgrade to wire version 2: a running
			// node restarts from its envelope with the new definitions
			// (the counter's storage version changes with it, so its
			// envelope is unreadable and it starts a new incarnation).
			id := pick(live)
			if cv, _ := c.WireVersions(id); cv == 1 {
				run.upgrades++
				opErr = c.RestartWith(id, dstatetest.SimRestart{Restore: true, Counter: &counterV2, Gauges: &gaugesV2})
			}
		case op < 96 && len(live) > 0:
			id, st := pick(live), c.States()[rng.IntN(2)]
			var res dstate.QueryResult
			if res, opErr = c.Query(id, st, time.Duration(rng.IntN(3))*time.Second); opErr == nil {
				opErr = c.CheckQuery(id, st, res)
			}
		case op < 100 && len(live) > 1:
			a, b := pick(live), pick(live)
			if a != b {
				opErr = c.ResetLink(a, b)
			}
		}
		if opErr != nil {
			return fail(fmt.Errorf("operation: %w", opErr))
		}
		if err := mon.Check(c); err != nil {
			return fail(err)
		}
		for range 1 + rng.IntN(3) {
			c.Step()
			if err := mon.Check(c); err != nil {
				return fail(err)
			}
		}
	}
	c.Heal()
	for _, id := range c.Nodes() {
		if c.Status(id) == dstatetest.SimDown {
			if err := c.Restart(id); err != nil {
				return fail(err)
			}
		}
	}
	if run.upgrades > 0 {
		// Finish the rolling upgrade: nodes at version 1 cannot read the
		// others.
		for _, id := range c.Live() {
			if cv, _ := c.WireVersions(id); cv == 1 {
				if err := c.RestartWith(id, dstatetest.SimRestart{Restore: true, Counter: &counterV2, Gauges: &gaugesV2}); err != nil {
					return fail(err)
				}
			}
		}
	}
	// A last burst of writes whose messages are all lost: no later write
	// reveals the gap.
	for range 1 + rng.IntN(4) {
		id := pick(c.Live())
		if rng.IntN(2) == 0 {
			_, err = c.MutateCounter(id, urgency(), func(x *dstatetest.Counter) { x.Count++ })
		} else {
			_, err = c.SetGauge(id, fmt.Sprintf("g%d", rng.IntN(4)), int64(rng.IntN(100)), urgency())
		}
		if err != nil {
			return fail(fmt.Errorf("last write: %w", err))
		}
	}
	c.LoseInFlight()
	start := c.Tick()
	for i := 0; i < 3000 && !c.Converged(); i++ {
		c.Step()
		if err := mon.Check(c); err != nil {
			return fail(err)
		}
		if i%5 == 4 {
			// Readers of the lazy states: pull the views marked stale.
			for _, id := range c.Live() {
				for _, st := range c.States() {
					res, err := c.Query(id, st, -1)
					if err == nil {
						err = c.CheckQuery(id, st, res)
					}
					if err != nil {
						return fail(err)
					}
				}
			}
		}
	}
	run.settled = c.Tick() - start
	if err := c.CheckConverged(); err != nil {
		return fail(err)
	}
	return fail(nil)
}

// TestPropertyConvergenceAndMonotonicity runs random fault-laden scenarios
// (see runProperty), one per seed, in parallel.
func TestPropertyConvergenceAndMonotonicity(t *testing.T) {
	seeds := propertySeeds(t)
	one := len(seeds) == 1
	begin := time.Now()
	t.Cleanup(func() { t.Logf("%d seeds in %s", len(seeds), time.Since(begin).Round(time.Millisecond)) })
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			if !one {
				t.Parallel()
			}
			run, err := runProperty(seed, one)
			if err != nil {
				if one {
					for _, line := range tail(run.trace, 300) {
						t.Log(line)
					}
				}
				t.Fatalf("seed %d (%d nodes, tick %d): %v\nreplay with DSTATE_SEED=%d", seed, run.nodes, run.ticks, err, seed)
			}
			if one {
				t.Logf("seed %d: %d nodes, %d ticks (settled in %d), %d restarts (%d restored), %d upgrades, stats %+v, hash %#x",
					seed, run.nodes, run.ticks, run.settled, run.restarts, run.restores, run.upgrades, run.stats, run.hash)
			}
		})
	}
}

func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// TestPropertyIsDeterministic runs the same seed twice and compares the
// trace hashes, and checks that another seed takes another path.
func TestPropertyIsDeterministic(t *testing.T) {
	const seed = 42
	a, err := runProperty(seed, false)
	if err != nil {
		t.Fatalf("first run: %v\nreplay with DSTATE_SEED=%d", err, seed)
	}
	b, err := runProperty(seed, false)
	if err != nil {
		t.Fatalf("second run: %v\nreplay with DSTATE_SEED=%d", err, seed)
	}
	if a.hash != b.hash || a.ticks != b.ticks || a.stats != b.stats {
		t.Fatalf("seed %d twice: hash %#x/%#x ticks %d/%d stats %+v / %+v, want identical runs",
			seed, a.hash, b.hash, a.ticks, b.ticks, a.stats, b.stats)
	}
	other, err := runProperty(seed+1, false)
	if err != nil {
		t.Fatalf("seed %d: %v\nreplay with DSTATE_SEED=%d", seed+1, err, seed+1)
	}
	if other.hash == a.hash {
		t.Fatalf("seeds %d and %d have the same trace hash %#x, want different", seed, seed+1, a.hash)
	}
}
