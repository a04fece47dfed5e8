package bench

import (
	"context"
	"fmt"
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
			m[fmt.Sprintf("n%d/key-%06d", i, k)] = int64(k * 7919)
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

	c, err := newLoopCluster(cfg.Nodes, loopOptions{MaxFrameSize: frame})
	if err != nil {
		return nil, err
	}
	defer c.close()
	var owners []*kvShard
	for i, n := range c.nodes {
		s, err := node.RegisterDelta(ctx, n, kvState{name: "kv"}, node.StateOptions[map[string]int64]{
			Config: dstate.DefaultStateConfig(), Initial: initial[i]})
		if err != nil {
			return nil, err
		}
		owners = append(owners, s)
	}
	c.joinAll()

	var times []time.Duration
	for run := range cfg.Runs {
		id := dstate.NodeID(fmt.Sprintf("new%d", run))
		n, err := c.add(id)
		if err != nil {
			return nil, err
		}
		s, err := node.RegisterDelta(ctx, n, kvState{name: "kv"}, node.StateOptions[map[string]int64]{
			Config: dstate.DefaultStateConfig(), Initial: map[string]int64{}})
		if err != nil {
			return nil, err
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
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}
