package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// CatchupConfig configures [Catchup].
type CatchupConfig struct {
	// Nodes is the size of the cluster before the join; Entries the view
	// entries (keys) it holds in total, split evenly.
	Nodes   int
	Entries int
	// Runs is the number of joins measured (a fresh node each time).
	Runs int
	// MaxFrameSize of the transports (0: the transport's default, 16 MiB).
	// A snapshot larger than a frame travels as several fragments.
	MaxFrameSize int
	// KeyBytes pads every key to this length (0: keys as short as
	// "n0/key-000000"), to make large states of few entries: 65,536 keys
	// of 4,096 bytes on one node are a 256 MiB snapshot. The snapshot and
	// message limits are raised to fit the largest snapshot when it is
	// over their defaults.
	KeyBytes int
	// Heap samples the heap every millisecond during each join and reports
	// its peak above the live heap before the join, and what the join left
	// live (the new node's views and any encoding the owners keep).
	Heap bool
}

// DefaultCatchupConfig is 3 nodes holding 100,000 entries, 3 joins, with
// 64 KiB frames so each ~600 KiB snapshot is fragmented.
func DefaultCatchupConfig() CatchupConfig {
	return CatchupConfig{Nodes: 3, Entries: 100_000, Runs: 3, MaxFrameSize: 64 << 10}
}

// Validate names the first invalid field.
func (c CatchupConfig) Validate() error {
	switch {
	case c.Nodes < 1:
		return fmt.Errorf("bench: catchup: Nodes %d, want ≥ 1", c.Nodes)
	case c.Entries < c.Nodes:
		return fmt.Errorf("bench: catchup: Entries %d, want ≥ Nodes", c.Entries)
	case c.Runs < 1:
		return fmt.Errorf("bench: catchup: Runs %d, want ≥ 1", c.Runs)
	case c.MaxFrameSize < 0:
		return fmt.Errorf("bench: catchup: MaxFrameSize %d, want ≥ 0", c.MaxFrameSize)
	case c.KeyBytes < 0:
		return fmt.Errorf("bench: catchup: KeyBytes %d, want ≥ 0", c.KeyBytes)
	}
	return nil
}

// Catchup runs the catch-up scenario: Nodes nodes each own a kv delta state
// with Entries/Nodes keys; a new node joins and the time until its views of
// every owner are complete (current generation, every key) is measured.
func Catchup(ctx context.Context, cfg CatchupConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := newResult("catchup", "a new node joins a cluster holding the entries; time until its views are complete (loopback TCP)")
	res.param("nodes", "%d", cfg.Nodes)
	res.param("entries", "%d", cfg.Entries)
	res.param("runs", "%d", cfg.Runs)

	per := cfg.Entries / cfg.Nodes
	initial := make([]map[string]int64, cfg.Nodes)
	largest := 0
	for i := range initial {
		n := per
		if i < cfg.Entries%cfg.Nodes {
			n++
		}
		m := make(map[string]int64, n)
		for k := range n {
			m[catchupKey(i, k, cfg.KeyBytes)] = int64(k * 7919)
		}
		initial[i] = m
		msg := dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "kv", Source: dstate.NodeID(fmt.Sprintf("n%d", i)),
			Generation: dstate.Generation{Incarnation: uint64(time.Now().UnixMilli()), Age: 1}, WireVersion: 1,
			CreatedUnixMs: 1, ModifiedUnixMs: 1, SentUnixMs: 1, Data: encodeKV(m)}
		largest = max(largest, dstate.EncodedSize(&msg))
	}
	frame := cfg.MaxFrameSize
	if frame == 0 {
		frame = transport.DefaultMaxFrameSize
	}
	if largest > frame {
		res.note("the largest snapshot (%d B) is larger than MaxFrameSize (%d B): the transport sends it as %d fragments and the receiver joins them",
			largest, frame, (largest+frame-1)/frame)
	} else {
		res.note("each snapshot fits in one transport frame (largest %d B, MaxFrameSize %d B): no fragmentation involved", largest, frame)
	}
	res.param("max-frame", "%d", frame)
	res.metric("largest snapshot", float64(largest)/1024, "KiB")
	opts := loopOptions{MaxFrameSize: frame}
	if largest > dstate.DefaultMaxPayload || largest > transport.DefaultMaxMessageSize {
		// Room for the largest snapshot, its envelope and a delta's growth.
		limit := (largest>>20 + 2) << 20
		opts.MaxMessageSize, opts.Limits.MaxSnapshot = limit, limit
		res.note("the snapshot and message limits are raised to %d B to fit the largest snapshot", limit)
	}
	if cfg.KeyBytes > 0 {
		res.param("key-bytes", "%d", cfg.KeyBytes)
	}

	c, err := newLoopCluster(cfg.Nodes, opts)
	if err != nil {
		return nil, err
	}
	defer c.close()
	var owners []*kvShard
	for i, n := range c.nodes {
		s, err := node.RegisterDelta(ctx, n, kvState{name: "kv"}, node.StateOptions[map[string]int64]{
			Config: dstate.DefaultStateConfig(), Initial: initial[i], ParallelDecode: true})
		if err != nil {
			return nil, err
		}
		owners = append(owners, s)
	}
	c.joinAll()
	// The cluster holds the entries once every owner holds every other
	// owner's view: a join timed before that would race the owners' own
	// exchange of their snapshots.
	formed := func() bool {
		for _, o := range owners {
			for i, src := range owners {
				v, ok := o.Views().Get(c.ids[i])
				if !ok || v.Generation != src.Generation() || len(v.Value) != len(initial[i]) {
					return false
				}
			}
		}
		return true
	}
	if err := waitUntil(ctx, 60*time.Second, "the owners to hold each other's views", formed); err != nil {
		return nil, err
	}

	var times []time.Duration
	for run := range cfg.Runs {
		id := dstate.NodeID(fmt.Sprintf("new%d", run))
		n, err := c.add(id)
		if err != nil {
			return nil, err
		}
		s, err := node.RegisterDelta(ctx, n, kvState{name: "kv"}, node.StateOptions[map[string]int64]{
			Config: dstate.DefaultStateConfig(), Initial: map[string]int64{}, ParallelDecode: true})
		if err != nil {
			return nil, err
		}
		var heap *heapSampler
		var before uint64
		if cfg.Heap {
			before = settledHeap()
			heap = startHeapSampler(time.Millisecond)
		}
		t0 := time.Now()
		c.join(len(c.nodes) - 1)
		// Tell the new node about the members (NodeUpdated: the members
		// already know each other, so they do not resend their snapshots).
		for i := range c.nodes[:len(c.nodes)-1] {
			c.ev.Emit(dstate.ClusterEvent{Kind: dstate.NodeUpdated, Node: c.ids[i], Tags: map[string]string{node.TransportTag: c.nodes[i].Addr()}})
		}
		complete := func() bool {
			for i, o := range owners {
				v, ok := s.Views().Get(c.ids[i])
				if !ok || v.Generation != o.Generation() || len(v.Value) != len(initial[i]) {
					return false
				}
			}
			return true
		}
		if err := waitUntil(ctx, 30*time.Second, "the new node's views to be complete", complete); err != nil {
			ws := c.wireStats()
			return nil, fmt.Errorf("%w (oversized frames %d, frames lost %d)", err, ws.OversizedFrames, ws.FramesLost)
		}
		times = append(times, time.Since(t0))
		if heap != nil {
			peak, live := heap.stop()
			after := settledHeap()
			extra := float64(0)
			if peak > before {
				extra = mib(peak - before)
			}
			retained := float64(0)
			if after > before {
				retained = mib(after - before)
			}
			res.metric(fmt.Sprintf("join %d: peak heap above the live heap before it", run+1), extra, "MiB")
			res.metric(fmt.Sprintf("join %d: heap the join left live", run+1), retained, "MiB")
			transient := float64(0)
			if peak > after {
				transient = mib(peak - after)
			}
			// The new views grow to what the join leaves live; the rest of
			// the peak is what the transfer itself held (and garbage not
			// yet collected).
			res.metric(fmt.Sprintf("join %d: peak heap above the heap the join left live", run+1), transient, "MiB")
			// The same for the live heap the GCs marked during the join:
			// garbage left out, as far as the GCs ran.
			liveOver := float64(0)
			if live > after {
				liveOver = mib(live - after)
			}
			res.metric(fmt.Sprintf("join %d: peak GC-marked live heap above the heap the join left live", run+1), liveOver, "MiB")
		}
		owners = append(owners, s) // the next new node must catch up with this one too (empty)
		initial = append(initial, map[string]int64{})
	}
	l := summarize(times)
	res.atMost("catch-up time (median of runs)", ms(l.p50), "ms", 2000)
	res.metric("catch-up time (worst run)", ms(l.mx), "ms")
	res.metric("entries received", float64(cfg.Entries), "entries")
	res.metric("entries/s (median run)", float64(cfg.Entries)/l.p50.Seconds(), "entries/s")
	res.note("time runs from the join event until the new node holds every owner's current generation with every key; " +
		"the 1 ms poll that detects it is included")
	if cfg.Heap {
		res.note("heap: %s sampled every 1 ms from the join until the views are complete; the live heap before is measured after a GC, "+
			"as is what the join left live. Sender and receiver share this process, so the peak is both ends together", heapObjectsMetric)
	}
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}

// catchupKey is owner i's key k, padded with dots to size bytes when it is
// shorter.
func catchupKey(i, k, size int) string {
	key := fmt.Sprintf("n%d/key-%06d", i, k)
	if len(key) < size {
		key += strings.Repeat(".", size-len(key))
	}
	return key
}
