package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// FailedPeerConfig configures [FailedPeer].
type FailedPeerConfig struct {
	// Queries is the number of queries measured at each max staleness.
	Queries int
	// PullTimeout of the state: a query that waited for the failed peer
	// would take this long.
	PullTimeout time.Duration
	// MaxStaleness is the staleness bound of the second series of queries
	// (the first is at 0: every query pulls the live peer).
	MaxStaleness time.Duration
}

// DefaultFailedPeerConfig is 20,000 queries per series with the default
// 5 s pull timeout, the second series at a 2 s max staleness.
func DefaultFailedPeerConfig() FailedPeerConfig {
	return FailedPeerConfig{Queries: 20_000, PullTimeout: dstate.DefaultPullTimeout, MaxStaleness: 2 * time.Second}
}

// Validate names the first invalid field.
func (c FailedPeerConfig) Validate() error {
	switch {
	case c.Queries < 1:
		return fmt.Errorf("bench: failedpeer: Queries %d, want ≥ 1", c.Queries)
	case c.PullTimeout <= 0:
		return fmt.Errorf("bench: failedpeer: PullTimeout %s, want > 0", c.PullTimeout)
	case c.MaxStaleness <= 0:
		return fmt.Errorf("bench: failedpeer: MaxStaleness %s, want > 0", c.MaxStaleness)
	}
	return nil
}

// FailedPeer runs the failed-peer query scenario: three nodes over
// loopback TCP own a key-value state; n2 is closed and reported failed, and
// queries on n1 are timed, first at max staleness 0 (each pulls n0 and
// waits for its answer), then at MaxStaleness (most answer from the views
// held). Every query must name n2 failed and none may wait for it.
func FailedPeer(ctx context.Context, cfg FailedPeerConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := newResult("failedpeer", "query latency on a survivor while one of three nodes is down and reported failed (loopback TCP)")
	res.param("queries", "%d", cfg.Queries)
	res.param("pull-timeout", "%s", cfg.PullTimeout)
	res.param("max-staleness", "%s", cfg.MaxStaleness)
	c, err := newLoopCluster(3, loopOptions{})
	if err != nil {
		return nil, err
	}
	defer c.close()
	stateCfg := dstate.DefaultStateConfig()
	stateCfg.PullTimeout = cfg.PullTimeout
	shards := make([]*kvShard, len(c.nodes))
	for i, n := range c.nodes {
		s, err := node.RegisterDelta(ctx, n, kvState{name: "kv"}, node.StateOptions[map[string]int64]{
			Config: stateCfg, Initial: map[string]int64{fmt.Sprintf("n%d", i): int64(i)}})
		if err != nil {
			return nil, err
		}
		shards[i] = s
	}
	c.joinAll()
	s := shards[1]
	holds := func() bool {
		for _, id := range []dstate.NodeID{"n0", "n2"} {
			if v, ok := s.Views().Get(id); !ok || v.Generation.IsZero() {
				return false
			}
		}
		return true
	}
	if err := waitUntil(ctx, 10*time.Second, "n1 to hold every view", holds); err != nil {
		return nil, err
	}
	closeCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = c.nodes[2].Close(closeCtx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("bench: failedpeer: close n2: %w", err)
	}
	c.ev.Emit(dstate.ClusterEvent{Kind: dstate.NodeFailed, Node: "n2"})
	if err := waitUntil(ctx, 10*time.Second, "n1 to take n2 for failed", func() bool { return len(s.FailedPeers()) == 1 }); err != nil {
		return nil, err
	}
	fn := func(dstate.Views[map[string]int64]) {}
	series := func(maxStale time.Duration) (latencies, error) {
		stale := func() bool { vs := s.Views(); v, _ := vs.Get("n2"); return time.Since(vs.SyncedAt(v)) > maxStale }
		if err := waitUntil(ctx, maxStale+10*time.Second, "n1's view of n2 to be stale", stale); err != nil {
			return latencies{}, err
		}
		samples := make([]time.Duration, 0, cfg.Queries)
		for range cfg.Queries {
			t0 := time.Now()
			err := s.Query(ctx, maxStale, fn)
			samples = append(samples, time.Since(t0))
			if !errors.Is(err, dstate.ErrPeerFailed) {
				return latencies{}, fmt.Errorf("bench: failedpeer: query at max staleness %s: %v, want n2 named failed", maxStale, err)
			}
		}
		return summarize(samples), nil
	}
	pulled, err := series(0)
	if err != nil {
		return nil, err
	}
	held, err := series(cfg.MaxStaleness)
	if err != nil {
		return nil, err
	}
	res.metric("query p50, max staleness 0", us(pulled.p50), "µs")
	res.atMost("query p99, max staleness 0", ms(pulled.p99), "ms", 1)
	res.metric("query max, max staleness 0", ms(pulled.mx), "ms")
	name := "max staleness " + cfg.MaxStaleness.String()
	res.metric("query p50, "+name, us(held.p50), "µs")
	res.atMost("query p99, "+name, ms(held.p99), "ms", 1)
	res.metric("query max, "+name, ms(held.mx), "ms")
	res.note("every query named n2 failed and returned without waiting for it (a wait would take the %s pull timeout); "+
		"at max staleness 0 each query pulls n0 and waits for its snapshot over loopback", cfg.PullTimeout)
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}
