package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// FeedConfig configures [Feed].
type FeedConfig struct {
	// States is the number of states n0 mutates; Rate the mutations per
	// second of each.
	States int
	Rate   float64
	// Duration of the mutation load.
	Duration time.Duration
	// BatchInterval of the change feed (0: dstate.DefaultBatchInterval).
	BatchInterval time.Duration
	// Keys is the number of keys each state cycles through.
	Keys int
}

// DefaultFeedConfig is 10 states × 100 mutations/s for 30 s.
func DefaultFeedConfig() FeedConfig {
	return FeedConfig{States: 10, Rate: 100, Duration: 30 * time.Second, Keys: 16}
}

// Validate names the first invalid field.
func (c FeedConfig) Validate() error {
	switch {
	case c.States < 1:
		return fmt.Errorf("bench: feed: States %d, want ≥ 1", c.States)
	case c.Rate <= 0:
		return fmt.Errorf("bench: feed: Rate %g, want > 0", c.Rate)
	case c.Duration <= 0:
		return fmt.Errorf("bench: feed: Duration %s, want > 0", c.Duration)
	case c.BatchInterval < 0:
		return fmt.Errorf("bench: feed: BatchInterval %s, want ≥ 0", c.BatchInterval)
	case c.Keys < 1:
		return fmt.Errorf("bench: feed: Keys %d, want ≥ 1", c.Keys)
	}
	return nil
}

type kvShard = node.DeltaShard[map[string]int64, map[string]int64, kvSet, kvSet]

// feedCluster is a 3-node cluster whose states use one strategy.
type feedCluster struct {
	c      *loopCluster
	shards []*kvShard // n0's states
	obs    [][]*kvShard
}

func newFeedCluster(ctx context.Context, cfg FeedConfig, strategy dstate.SyncStrategy) (*feedCluster, error) {
	c, err := newLoopCluster(3, loopOptions{})
	if err != nil {
		return nil, err
	}
	f := &feedCluster{c: c, obs: make([][]*kvShard, 2)}
	for i, n := range c.nodes {
		for s := range cfg.States {
			sc := dstate.DefaultStateConfig()
			sc.SyncStrategy = strategy
			sh, err := node.RegisterDelta(ctx, n, kvState{name: fmt.Sprintf("kv%d", s)}, node.StateOptions[map[string]int64]{
				Config: sc, Initial: map[string]int64{}})
			if err != nil {
				c.close()
				return nil, err
			}
			if i == 0 {
				f.shards = append(f.shards, sh)
			} else {
				f.obs[i-1] = append(f.obs[i-1], sh)
			}
		}
	}
	c.joinAll()
	err = waitUntil(ctx, 10*time.Second, "the initial snapshots", func() bool {
		for _, o := range f.obs {
			for _, sh := range o {
				if v, ok := sh.Views().Get("n0"); !ok || v.Generation.IsZero() {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		c.close()
		return nil, err
	}
	return f, nil
}

// Feed runs the feed scenario: two 3-node clusters side by side, one with
// active push, one with the change feed (lazy pull), take the same
// mutations on n0; the bytes and frames every transport writes are counted.
func Feed(ctx context.Context, cfg FeedConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := newResult("feed", "wire cost per mutation: change feed (lazy pull) vs active push (3 nodes, loopback TCP)")
	res.param("states", "%d", cfg.States)
	res.param("rate", "%g/s per state", cfg.Rate)
	res.param("duration", "%s", cfg.Duration)
	feedStrategy := dstate.FeedLazyPullStrategy()
	if cfg.BatchInterval > 0 {
		feedStrategy.ChangeFeed.BatchInterval = cfg.BatchInterval
	}
	res.param("batch-interval", "%s", feedStrategy.BatchInterval())
	res.param("keys", "%d", cfg.Keys)

	push, err := newFeedCluster(ctx, cfg, dstate.ActivePushStrategy())
	if err != nil {
		return nil, err
	}
	defer push.c.close()
	feed, err := newFeedCluster(ctx, cfg, feedStrategy)
	if err != nil {
		return nil, err
	}
	defer feed.c.close()
	// Let the join traffic and a first feed flush pass before counting.
	time.Sleep(feedStrategy.BatchInterval() + 100*time.Millisecond)
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%02d", i)
	}

	p0, f0 := push.c.wireStats(), feed.c.wireStats()
	total := int(cfg.Rate * float64(cfg.States) * cfg.Duration.Seconds())
	pc := newPacer(cfg.Rate * float64(cfg.States))
	defer pc.close()
	for k := range total {
		if k&63 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		pc.wait(k)
		s := k % cfg.States
		set := kvSet{Key: keys[(k/cfg.States)%len(keys)], Value: int64(k)}
		fn := func(m *map[string]int64) kvSet { (*m)[set.Key] = set.Value; return set }
		// The same mutation on both clusters, alternating which goes first.
		first, second := push.shards[s], feed.shards[s]
		if k&1 == 1 {
			first, second = second, first
		}
		if _, _, err := first.MutateDelta(ctx, fn); err != nil {
			return nil, err
		}
		if _, _, err := second.MutateDelta(ctx, fn); err != nil {
			return nil, err
		}
	}
	loadTime := time.Since(pc.start)
	// Wait one batch interval so the last notices are flushed, and until
	// the push observers hold the last generation.
	time.Sleep(feedStrategy.BatchInterval() + 200*time.Millisecond)
	p1, f1 := push.c.wireStats(), feed.c.wireStats()

	per := func(a, b transport.Stats) (bytes, frames float64) {
		return float64(b.BytesOut-a.BytesOut) / float64(total), float64(b.FramesOut-a.FramesOut) / float64(total)
	}
	pb, pf := per(p0, p1)
	fb, ff := per(f0, f1)
	res.metric("mutations", float64(total), "")
	res.metric("achieved rate", float64(total)/loadTime.Seconds(), "mutations/s")
	res.metric("active push: bytes per mutation", pb, "B")
	res.metric("active push: frames per mutation", pf, "frames")
	res.metric("change feed: bytes per mutation", fb, "B")
	res.metric("change feed: frames per mutation", ff, "frames")
	res.atLeast("bytes reduction (push ÷ feed)", ratio(pb, fb), "×", 100)
	res.metric("frames reduction (push ÷ feed)", ratio(pf, ff), "×")
	// Did the feed reach the observers? Every view of n0 must be pending
	// (stale) or current.
	stale := 0
	for _, o := range feed.obs {
		for i, sh := range o {
			v, _ := sh.Views().Get("n0")
			if v.Pending.Less(feed.shards[i].Generation()) && v.Generation.Less(feed.shards[i].Generation()) {
				stale++
			}
		}
	}
	if stale > 0 {
		res.note("%d feed views did not learn of n0's last generation", stale)
	}
	res.note("bytes are frame bytes written by all three transports (without the 4-byte length prefix or TCP/IP headers); " +
		"with the change feed nothing else is sent until a query pulls a stale view, so the pull cost is not included")
	res.note("both clusters run side by side and take each mutation in turn, alternating which goes first")
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}
