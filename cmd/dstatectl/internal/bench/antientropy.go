package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// The two anti-entropy designs the heal and idle scenarios compare in the
// same run: the blind periodic full sync that was the agent's default
// before digests (every state broadcasts its full snapshot every 10 s, no
// digests), and digests at the node's default interval with no periodic
// full sync (the agent's default now).
type syncDesign struct {
	name     string
	fullSync time.Duration
	digest   time.Duration // node.Config.DigestInterval
}

// DefaultFullSyncInterval is the periodic full-sync interval of the old
// design in the heal and idle scenarios (the agent's former default).
const DefaultFullSyncInterval = 10 * time.Second

func syncDesigns(fullSync time.Duration) []syncDesign {
	return []syncDesign{
		{name: "periodic full sync", fullSync: fullSync, digest: -1},
		{name: "digest", digest: 0},
	}
}

func (d syncDesign) stateConfig() dstate.StateConfig {
	c := dstate.DefaultStateConfig()
	c.SyncStrategy.PeriodicFullSync = d.fullSync
	return c
}

// HealConfig configures [Heal].
type HealConfig struct {
	// Nodes is the cluster size; Entries the keys each node's kv state
	// holds; Runs the partitions healed per design.
	Nodes, Entries, Runs int
	// FullSync is the periodic full-sync interval of the old design.
	FullSync time.Duration
}

// DefaultHealConfig is 3 nodes of 1,000 keys each, 3 heals per design,
// against a 10 s periodic full sync.
func DefaultHealConfig() HealConfig {
	return HealConfig{Nodes: 3, Entries: 1000, Runs: 3, FullSync: DefaultFullSyncInterval}
}

// Validate names the first invalid field.
func (c HealConfig) Validate() error {
	switch {
	case c.Nodes < 2:
		return fmt.Errorf("bench: heal: Nodes %d, want ≥ 2", c.Nodes)
	case c.Entries < 0:
		return fmt.Errorf("bench: heal: Entries %d, want ≥ 0", c.Entries)
	case c.Runs < 1:
		return fmt.Errorf("bench: heal: Runs %d, want ≥ 1", c.Runs)
	case c.FullSync <= 0:
		return fmt.Errorf("bench: heal: FullSync %s, want > 0", c.FullSync)
	}
	return nil
}

// Heal runs the heal scenario for each design: a cluster whose nodes own a
// kv delta state is cut off entirely (every frame dropped), every node
// writes one key, the partition heals and nothing more is written; the
// time from the heal until every node holds every other node's current
// generation is measured.
func Heal(ctx context.Context, cfg HealConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := newResult("heal", "time from a partition's heal, with no further writes, until every view is current: periodic full sync vs digests (loopback TCP)")
	res.param("nodes", "%d", cfg.Nodes)
	res.param("entries", "%d per node", cfg.Entries)
	res.param("runs", "%d per design", cfg.Runs)
	res.param("full-sync", "%s", cfg.FullSync)
	res.param("digest-interval", "%s (node default)", node.DefaultDigestInterval)
	for _, d := range syncDesigns(cfg.FullSync) {
		times, err := healRuns(ctx, cfg, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		l := summarize(times)
		if d.fullSync == 0 {
			res.atMost(d.name+": heal time (worst run)", ms(l.mx), "ms", 1000)
		} else {
			res.metric(d.name+": heal time (worst run)", ms(l.mx), "ms")
		}
		res.metric(d.name+": heal time (median run)", ms(l.p50), "ms")
	}
	res.note("the partition drops every frame in both directions (the transport's fault hook, as e2e's partitions do); " +
		"the connections stay up, so only the periodic mechanism (full sync or digest) can repair the views")
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}

func healRuns(ctx context.Context, cfg HealConfig, d syncDesign) ([]time.Duration, error) {
	var drop atomic.Bool
	c, err := newLoopCluster(cfg.Nodes, loopOptions{DigestInterval: d.digest, Drop: &drop})
	if err != nil {
		return nil, err
	}
	defer c.close()
	shards, err := registerKV(ctx, c, cfg.Entries, d.stateConfig())
	if err != nil {
		return nil, err
	}
	c.joinAll()
	if err := waitUntil(ctx, 30*time.Second, "the cluster to converge", func() bool { return kvConverged(c, shards) }); err != nil {
		return nil, err
	}
	var times []time.Duration
	for run := range cfg.Runs {
		drop.Store(true)
		for i, s := range shards {
			if _, _, err := s.MutateDelta(ctx, func(m *map[string]int64) kvSet {
				k := kvSet{Key: fmt.Sprintf("n%d/run-%d", i, run), Value: int64(run)}
				(*m)[k.Key] = k.Value
				return k
			}); err != nil {
				return nil, err
			}
		}
		drop.Store(false)
		t0 := time.Now()
		if err := waitUntil(ctx, 3*cfg.FullSync+10*time.Second, "every view to be current after the heal", func() bool { return kvConverged(c, shards) }); err != nil {
			return nil, err
		}
		times = append(times, time.Since(t0))
	}
	return times, nil
}

// registerKV registers a kv delta state of entries keys on every node.
func registerKV(ctx context.Context, c *loopCluster, entries int, cfg dstate.StateConfig) ([]*kvShard, error) {
	var shards []*kvShard
	for i, n := range c.nodes {
		m := make(map[string]int64, entries)
		for k := range entries {
			m[fmt.Sprintf("n%d/key-%06d", i, k)] = int64(k * 7919)
		}
		s, err := node.RegisterDelta(ctx, n, kvState{name: "kv"}, node.StateOptions[map[string]int64]{Config: cfg, Initial: m})
		if err != nil {
			return nil, err
		}
		shards = append(shards, s)
	}
	return shards, nil
}

// kvConverged reports whether every node holds every other node's current
// generation.
func kvConverged(c *loopCluster, shards []*kvShard) bool {
	for i, o := range shards {
		g := o.Generation()
		for j, s := range shards {
			if i == j {
				continue
			}
			if v, ok := s.Views().Get(c.ids[i]); !ok || v.Generation != g {
				return false
			}
		}
	}
	return true
}

// IdleConfig configures [Idle].
type IdleConfig struct {
	// Nodes is the cluster size; Entries the keys all nodes' kv states
	// hold together.
	Nodes, Entries int
	// Duration is the measured idle interval per design.
	Duration time.Duration
	// FullSync is the periodic full-sync interval of the old design.
	FullSync time.Duration
}

// DefaultIdleConfig is 3 nodes holding 100,000 keys, idle for 60 s per
// design, against a 10 s periodic full sync.
func DefaultIdleConfig() IdleConfig {
	return IdleConfig{Nodes: 3, Entries: 100_000, Duration: time.Minute, FullSync: DefaultFullSyncInterval}
}

// Validate names the first invalid field.
func (c IdleConfig) Validate() error {
	switch {
	case c.Nodes < 2:
		return fmt.Errorf("bench: idle: Nodes %d, want ≥ 2", c.Nodes)
	case c.Entries < c.Nodes:
		return fmt.Errorf("bench: idle: Entries %d, want ≥ Nodes", c.Entries)
	case c.Duration <= 0:
		return fmt.Errorf("bench: idle: Duration %s, want > 0", c.Duration)
	case c.FullSync <= 0:
		return fmt.Errorf("bench: idle: FullSync %s, want > 0", c.FullSync)
	}
	return nil
}

// Idle runs the idle scenario for each design: a converged cluster holding
// Entries keys writes nothing for Duration, and the bytes its transports
// send meanwhile (frames, length prefixes and keepalives) are counted per
// node and second.
func Idle(ctx context.Context, cfg IdleConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := newResult("idle", "bytes on the wire per node and second of an idle cluster holding the entries: periodic full sync vs digests (loopback TCP)")
	res.param("nodes", "%d", cfg.Nodes)
	res.param("entries", "%d in total", cfg.Entries)
	res.param("duration", "%s per design", cfg.Duration)
	res.param("full-sync", "%s", cfg.FullSync)
	res.param("digest-interval", "%s (node default)", node.DefaultDigestInterval)
	for _, d := range syncDesigns(cfg.FullSync) {
		perNode, frames, err := idleRun(ctx, cfg, d)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.name, err)
		}
		if d.fullSync == 0 {
			res.atMost(d.name+": bytes sent per node", perNode, "B/s", 1024)
		} else {
			res.metric(d.name+": bytes sent per node", perNode, "B/s")
		}
		res.metric(d.name+": frames sent per node", frames, "frames/s")
	}
	res.note("measured from the transports' counters after the cluster converged; " +
		"each frame counts its 4-byte length prefix, keepalives count 4 bytes")
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}

func idleRun(ctx context.Context, cfg IdleConfig, d syncDesign) (bytesPerNode, framesPerNode float64, err error) {
	c, err := newLoopCluster(cfg.Nodes, loopOptions{DigestInterval: d.digest})
	if err != nil {
		return 0, 0, err
	}
	defer c.close()
	shards, err := registerKV(ctx, c, cfg.Entries/cfg.Nodes, d.stateConfig())
	if err != nil {
		return 0, 0, err
	}
	c.joinAll()
	if err := waitUntil(ctx, 30*time.Second, "the cluster to converge", func() bool { return kvConverged(c, shards) }); err != nil {
		return 0, 0, err
	}
	// Let what the join exchange still has in flight land first.
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	wire := func() (bytes, frames uint64) {
		s := c.wireStats()
		return s.BytesOut + 4*s.FramesOut + 4*s.KeepalivesOut, s.FramesOut
	}
	b0, f0 := wire()
	t0 := time.Now()
	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	b1, f1 := wire()
	secs := time.Since(t0).Seconds() * float64(cfg.Nodes)
	return float64(b1-b0) / secs, float64(f1-f0) / secs, nil
}
