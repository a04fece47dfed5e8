package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// ThroughputConfig configures [Throughput].
type ThroughputConfig struct {
	// Duration of the measured interval (after a warm-up of a tenth of it).
	Duration time.Duration
	// Window is the most mutations in flight: committed on n0 and not yet
	// applied by both observers. It bounds every queue on the way (the
	// transport's per-peer queue and the state mailbox hold 1,024 each).
	Window int
}

// DefaultThroughputConfig measures for 5 s with a window of 768.
func DefaultThroughputConfig() ThroughputConfig {
	return ThroughputConfig{Duration: 5 * time.Second, Window: 768}
}

// Validate names the first invalid field.
func (c ThroughputConfig) Validate() error {
	switch {
	case c.Duration <= 0:
		return fmt.Errorf("bench: throughput: Duration %s, want > 0", c.Duration)
	case c.Window < 1:
		return fmt.Errorf("bench: throughput: Window %d, want ≥ 1", c.Window)
	}
	return nil
}

type seqShard = node.DeltaShard[seqView, seqView, seqView, seqView]

// Throughput runs the throughput scenario: one writer on n0 keeps Window
// mutations in flight to n1 and n2 (closed loop, so nothing queues up
// beyond the window), and the deltas each observer applies per second are
// counted.
func Throughput(ctx context.Context, cfg ThroughputConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := newResult("throughput", "sustained deltas/s from n0 to each peer, closed loop (3 nodes, loopback TCP)")
	res.param("duration", "%s", cfg.Duration)
	res.param("window", "%d", cfg.Window)
	c, err := newLoopCluster(3, loopOptions{})
	if err != nil {
		return nil, err
	}
	defer c.close()
	var shards []*seqShard
	rm := newRoom(len(c.nodes) - 1)
	for i, n := range c.nodes {
		def := seqState{name: "seq"}
		if i > 0 {
			def.room, def.obs = rm, i-1
		}
		s, err := node.RegisterDelta(ctx, n, def, node.StateOptions[seqView]{Config: dstate.DefaultStateConfig()})
		if err != nil {
			return nil, err
		}
		shards = append(shards, s)
	}
	src, obs := shards[0], shards[1:]
	c.joinAll()
	if err := waitUntil(ctx, 10*time.Second, "the observers to hold n0's view", func() bool {
		for _, o := range obs {
			if v, ok := o.Views().Get("n0"); !ok || v.Generation.IsZero() {
				return false
			}
		}
		return true
	}); err != nil {
		return nil, err
	}

	// The writer: one goroutine, closed loop. When Window updates are
	// unapplied it waits, woken by the observer that applies the update
	// that frees a quarter of the window.
	stop := make(chan struct{})
	werr := make(chan error, 1)
	go func() {
		window := uint64(cfg.Window)
		resume := window - max(window/4, 1)
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		var last, low uint64
		set := func(v *seqView) seqView {
			v.Seq++
			v.CPU = int64(v.Seq % 100)
			last = v.Seq
			return *v
		}
		for {
			select {
			case <-stop:
				werr <- nil
				return
			default:
			}
			// low is the slowest observer's sequence number when last read.
			if last >= low+window {
				low = rm.min()
				for last >= low+window {
					low = rm.waitFor(last-resume, stop, timer)
					select {
					case <-stop:
						werr <- nil
						return
					default:
					}
				}
			}
			if _, _, err := src.MutateDelta(ctx, set); err != nil {
				werr <- err
				return
			}
		}
	}()

	deltas := func() []uint64 {
		out := make([]uint64, len(obs))
		for i, o := range obs {
			out[i] = o.Metrics().DeltasReceived
		}
		return out
	}
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sleep(cfg.Duration / 10); err != nil {
		close(stop)
		<-werr
		return nil, err
	}
	// Measured interval, sampling memory and queues 10 times a second.
	ms0 := memStatsNoGC()
	d0, t0, cpu0 := deltas(), time.Now(), processCPU()
	var heapMax, heapFirst uint64
	maxQ := 0
	for time.Since(t0) < cfg.Duration {
		if err := sleep(100 * time.Millisecond); err != nil {
			close(stop)
			<-werr
			return nil, err
		}
		m := memStatsNoGC()
		if heapFirst == 0 {
			heapFirst = m.HeapInuse
		}
		heapMax = max(heapMax, m.HeapInuse)
		maxQ = max(maxQ, c.maxQueue())
	}
	d1, el, cpu := deltas(), time.Since(t0), processCPU()-cpu0
	ms1 := memStatsNoGC()
	close(stop)
	if err := <-werr; err != nil {
		return nil, err
	}

	var total uint64
	perPeer := -1.0
	for i := range obs {
		n := d1[i] - d0[i]
		total += n
		r := float64(n) / el.Seconds()
		if perPeer < 0 || r < perPeer {
			perPeer = r
		}
	}
	res.atLeast("deltas/s to each peer (slowest)", perPeer, "deltas/s", 300_000)
	res.metric("deltas/s delivered (both peers)", float64(total)/el.Seconds(), "deltas/s")
	res.metric("allocs per delivered delta", ratio(float64(ms1.Mallocs-ms0.Mallocs), float64(total)), "allocs")
	res.metric("bytes allocated per delivered delta", ratio(float64(ms1.TotalAlloc-ms0.TotalAlloc), float64(total)), "B")
	if cpu > 0 {
		res.metric("CPU per delivered delta (whole process)", ratio(float64(cpu.Nanoseconds()), float64(total)), "ns")
		res.metric("CPU used", cpu.Seconds()/el.Seconds(), "cores")
	}
	res.metric("heap in use, first sample", float64(heapFirst)/(1<<20), "MiB")
	res.metric("heap in use, max sample", float64(heapMax)/(1<<20), "MiB")
	res.metric("longest transport queue seen", float64(maxQ), "frames")
	var gaps, snaps uint64
	for _, o := range obs {
		m := o.Metrics()
		gaps += m.AgeGaps
		snaps += m.SnapshotsReceived
	}
	mb, se := c.hostDrops()
	ws := c.wireStats()
	res.metric("losses (gaps + mailbox drops + queue drops)", float64(gaps+mb+se+ws.QueueDrops), "")
	res.note("allocations are the whole process's (sender, both receivers, transports) divided by the deltas applied")
	res.note("memory is bounded by the window: the writer never has more than %d mutations unapplied, so no queue can grow past it", cfg.Window)
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}

// memStatsNoGC reads the heap statistics without forcing a collection.
func memStatsNoGC() runtime.MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
