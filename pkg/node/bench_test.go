package node_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
)

// The loopback benchmarks: three nodes in one process, each with its own
// TCP transport on 127.0.0.1, the goroutine runtime and the system clock,
// replicating dstatetest.GaugesState (one key, active push, so every
// mutation travels as one DeltaUpdate to each peer). n0 mutates; n1 and n2
// observe. BENCHMARKS.md records the figures; run them with
//
//	go test -run '^$' -bench Loopback -benchtime=10000x ./pkg/node

type gaugeShard = node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]

// benchCluster starts n0, n1 and n2, registers the gauges state with cfg on
// each, joins them and waits until both observers hold n0's initial view.
func benchCluster(b *testing.B, cfg dstate.StateConfig) (src *gaugeShard, obs []*gaugeShard, nodes []*node.Node) {
	b.Helper()
	c := newTestCluster(b)
	ids := []dstate.NodeID{"n0", "n1", "n2"}
	shards := make([]*gaugeShard, len(ids))
	for i, id := range ids {
		n := c.Start(id)
		s, err := node.RegisterDelta(ctx, n, dstatetest.GaugesState{}, node.StateOptions[dstatetest.Gauges]{
			Config: cfg, Initial: dstatetest.NewGauges(),
		})
		require.NoError(b, err)
		shards[i] = s
		nodes = append(nodes, n)
	}
	c.JoinAll()
	for _, s := range shards[1:] {
		eventually(b, "observer holds n0's view", func() bool {
			v, ok := s.Views().Get("n0")
			return ok && !v.Generation.IsZero()
		})
	}
	return shards[0], shards[1:], nodes
}

// waitFor returns the view of "n0" held by s once it reaches g. It polls
// with short sleeps rather than spinning: on a small machine a spinning
// poller takes a CPU from the nodes and inflates the latency it measures.
// How soon it notices does not change the measured latency, which is taken
// from the view's SyncedAt (Views.SyncedAt, stamped by the receiving engine when it
// applied the update).
func waitFor(b *testing.B, s *gaugeShard, g dstate.Generation) *dstate.StateViewObject[dstatetest.GaugesView] {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, ok := s.Views().Get("n0"); ok && !v.Generation.Less(g) {
			return v
		}
		if time.Now().After(deadline) {
			b.Fatalf("generation %s did not arrive within 10s", g)
		}
		time.Sleep(10 * time.Microsecond)
	}
}

// minAge returns the lowest age of n0's view among the observers.
func minAge(obs []*gaugeShard) uint64 {
	m := ^uint64(0)
	for _, o := range obs {
		v, _ := o.Views().Get("n0")
		m = min(m, v.Generation.Age)
	}
	return m
}

// percentile returns the q-quantile (0 ≤ q < 1) of sorted samples.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(float64(len(sorted))*q), len(sorted)-1)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkLoopbackLatency measures, one mutation at a time, the time from
// calling MutateDelta on n0 until each observer's engine has applied the
// delta: a sample per (mutation, observer) is the observer view's SyncedAt
// minus the instant before the call (all nodes share the process's
// monotonic clock). It reports p50-µs, p99-µs and max-µs of those
// samples, and mutate-p50-µs, the round trip of MutateDelta itself (the
// local commit, which includes handing the frames to the transport).
// ns/op is the whole paced loop and is not a latency figure.
func BenchmarkLoopbackLatency(b *testing.B) {
	src, obs, nodes := benchCluster(b, dstate.DefaultStateConfig())
	lat := make([]time.Duration, 0, b.N*len(obs))
	local := make([]time.Duration, 0, b.N)
	var v int64
	set := func(g *dstatetest.Gauges) dstatetest.GaugeChange {
		v++
		g.Values["cpu"] = v
		return dstatetest.GaugeChange{Key: "cpu", Value: v}
	}
	before := sumMetrics(obs)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		g, _, err := src.MutateDelta(ctx, set)
		if err != nil {
			b.Fatal(err)
		}
		local = append(local, time.Since(t0))
		for _, o := range obs {
			view := waitFor(b, o, g)
			lat = append(lat, o.Views().SyncedAt(view).Sub(t0))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(local)
	b.ReportMetric(us(percentile(lat, 0.50)), "p50-µs")
	b.ReportMetric(us(percentile(lat, 0.99)), "p99-µs")
	b.ReportMetric(us(lat[len(lat)-1]), "max-µs")
	b.ReportMetric(us(percentile(local, 0.50)), "mutate-p50-µs")
	reportPaths(b, before, sumMetrics(obs), nodes)
}

// BenchmarkLoopbackThroughput measures deltas delivered per second; the
// clock stops when both observers hold n0's last generation, and deltas/s
// counts the deltas the observers applied (two per mutation when none is
// lost).
//
// "window-256" is closed-loop: one writer keeps at most 256 mutations in
// flight (committed on n0, not yet applied by both observers), the
// sustainable rate without loss. "open-4" is open-loop: four goroutines
// mutate back to back; mutations/s is the rate n0 committed them. When
// they outrun a receiver, frames are dropped (a full transport queue or
// state mailbox), the receivers detect the gaps and catch up by snapshot,
// and a 100 ms periodic full sync repairs a lost tail; the extra metrics
// say how often.
func BenchmarkLoopbackThroughput(b *testing.B) {
	b.Run("window-256", func(b *testing.B) { loopbackWindowed(b, 256) })
	b.Run("open-4", func(b *testing.B) { loopbackOpen(b, 4) })
}

func loopbackWindowed(b *testing.B, window uint64) {
	src, obs, nodes := benchCluster(b, dstate.DefaultStateConfig())
	set := func(g *dstatetest.Gauges) dstatetest.GaugeChange {
		x := g.Values["cpu"] + 1
		g.Values["cpu"] = x
		return dstatetest.GaugeChange{Key: "cpu", Value: x}
	}
	before := sumMetrics(obs)
	b.ResetTimer()
	start := time.Now()
	var last dstate.Generation
	for range b.N {
		for last.Age >= minAge(obs)+window {
			time.Sleep(10 * time.Microsecond)
		}
		g, _, err := src.MutateDelta(ctx, set)
		if err != nil {
			b.Fatal(err)
		}
		last = g
	}
	for _, o := range obs {
		waitFor(b, o, last)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	after := sumMetrics(obs)
	b.ReportMetric(float64(after.DeltasReceived-before.DeltasReceived)/elapsed.Seconds(), "deltas/s")
	reportPaths(b, before, after, nodes)
}

func loopbackOpen(b *testing.B, writers int) {
	cfg := dstate.DefaultStateConfig()
	cfg.SyncStrategy.PeriodicFullSync = 100 * time.Millisecond
	src, obs, nodes := benchCluster(b, cfg)
	set := func(g *dstatetest.Gauges) dstatetest.GaugeChange {
		x := g.Values["cpu"] + 1
		g.Values["cpu"] = x
		return dstatetest.GaugeChange{Key: "cpu", Value: x}
	}
	before := sumMetrics(obs)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var last dstate.Generation
	for w := range writers {
		count := b.N / writers
		if w < b.N%writers {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range count {
				g, _, err := src.MutateDelta(ctx, set)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				if last.Less(g) {
					last = g
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	committed := time.Since(start)
	for _, o := range obs {
		waitFor(b, o, last)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	after := sumMetrics(obs)
	b.ReportMetric(float64(after.DeltasReceived-before.DeltasReceived)/elapsed.Seconds(), "deltas/s")
	b.ReportMetric(float64(b.N)/committed.Seconds(), "mutations/s")
	reportPaths(b, before, after, nodes)
}

// sumMetrics adds up the observers' engine counters.
func sumMetrics(obs []*gaugeShard) dstate.SyncMetrics {
	var t dstate.SyncMetrics
	for _, o := range obs {
		m := o.Metrics()
		t.DeltasReceived += m.DeltasReceived
		t.SnapshotsReceived += m.SnapshotsReceived
		t.AgeGaps += m.AgeGaps
	}
	return t
}

// reportPaths reports how the updates travelled when anything but deltas
// was needed: gaps repaired by snapshots, and frames the hosts dropped.
func reportPaths(b *testing.B, before, after dstate.SyncMetrics, nodes []*node.Node) {
	b.Helper()
	var drops, sendErrs uint64
	for _, n := range nodes {
		st := n.Stats()
		drops += st.MailboxDrops
		sendErrs += st.SendErrors
	}
	if gaps := after.AgeGaps - before.AgeGaps; gaps > 0 || drops > 0 || sendErrs > 0 {
		b.ReportMetric(float64(gaps), "gaps")
		b.ReportMetric(float64(after.SnapshotsReceived-before.SnapshotsReceived), "snapshots")
		b.ReportMetric(float64(drops), "mailbox-drops")
		b.ReportMetric(float64(sendErrs), "send-errors")
	}
}
