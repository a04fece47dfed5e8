package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// WatchConfig configures [Watch].
type WatchConfig struct {
	// Mutations is the number of mutations on n0 of the latency run.
	Mutations int
	// Rate is the mutation rate per second of both runs.
	Rate float64
	// PollInterval is the interval of the polling reader compared with
	// the watcher.
	PollInterval time.Duration
	// Watchers is the number of watchers on n1 of the fan-out run.
	Watchers int
	// FanOutFor is how long the fan-out run mutates.
	FanOutFor time.Duration
}

// DefaultWatchConfig is 20,000 mutations at 2,000/s with a 10 ms poller,
// then 1,000 watchers for 3 s at the same rate.
func DefaultWatchConfig() WatchConfig {
	return WatchConfig{Mutations: 20_000, Rate: 2_000, PollInterval: 10 * time.Millisecond, Watchers: 1_000, FanOutFor: 3 * time.Second}
}

// Validate names the first invalid field.
func (c WatchConfig) Validate() error {
	switch {
	case c.Mutations < 1:
		return fmt.Errorf("bench: watch: Mutations %d, want ≥ 1", c.Mutations)
	case c.Rate <= 0:
		return fmt.Errorf("bench: watch: Rate %g, want > 0", c.Rate)
	case c.PollInterval <= 0:
		return fmt.Errorf("bench: watch: PollInterval %s, want > 0", c.PollInterval)
	case c.Watchers < 0:
		return fmt.Errorf("bench: watch: Watchers %d, want ≥ 0", c.Watchers)
	case c.Watchers > 0 && c.FanOutFor <= 0:
		return fmt.Errorf("bench: watch: FanOutFor %s, want > 0", c.FanOutFor)
	}
	return nil
}

// Watch runs the watch scenario on three nodes over loopback TCP. First,
// n0 mutates a delta state Mutations times at Rate while n1 records when
// each update became visible three ways: in the engine (the replication
// latency itself), to a watcher (Shard.Watch, every generation), and to a
// reader polling the views every PollInterval. Then Watchers watchers on
// n1 follow the same load for FanOutFor: the process's CPU time and heap
// are compared with the same load without them.
func Watch(ctx context.Context, cfg WatchConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := newResult("watch", "mutate on n0 → a watcher on n1 told, beside the replication itself and a 10 ms poller; then many watchers on one node (loopback TCP)")
	res.param("mutations", "%d", cfg.Mutations)
	res.param("rate", "%g/s", cfg.Rate)
	res.param("poll-interval", "%s", cfg.PollInterval)
	res.param("watchers", "%d", cfg.Watchers)
	res.param("fan-out-for", "%s", cfg.FanOutFor)

	log := newSendLog(cfg.Mutations)
	engineRec := newRecorder(log)
	c, err := newLoopCluster(3, loopOptions{})
	if err != nil {
		return nil, err
	}
	defer c.close()
	var src, obs *node.DeltaShard[seqView, seqView, seqView, seqView]
	for i, n := range c.nodes {
		def := seqState{name: "seq"}
		if i == 1 {
			def.rec = engineRec
		}
		s, err := node.RegisterDelta(ctx, n, def, node.StateOptions[seqView]{Config: dstate.DefaultStateConfig()})
		if err != nil {
			return nil, err
		}
		switch i {
		case 0:
			src = s
		case 1:
			obs = s
		}
	}
	c.joinAll()
	if err := waitUntil(ctx, 10*time.Second, "n1 to hold n0's view", func() bool { _, ok := obs.Views().Get("n0"); return ok }); err != nil {
		return nil, err
	}

	// The watcher and the poller, each feeding its own recorder.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	watchRec, pollRec := newRecorder(log), newRecorder(log)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ch, err := range obs.Watch(wctx, node.WatchOptions{Nodes: []dstate.NodeID{"n0"}, EveryGeneration: true}) {
			if err != nil {
				return
			}
			if ch.View != nil {
				watchRec.saw(ch.View.Value.Seq)
			}
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(cfg.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				if v, ok := obs.Views().Get("n0"); ok {
					pollRec.saw(v.Value.Seq)
				}
			}
		}
	}()
	p := newPacer(cfg.Rate)
	defer p.close()
	for k := 1; k <= cfg.Mutations; k++ {
		p.wait(k)
		log.mark(k)
		if _, _, err := src.MutateDelta(ctx, func(v *seqView) seqView { v.Seq = uint64(k); return *v }); err != nil {
			return nil, fmt.Errorf("bench: watch: mutate %d: %w", k, err)
		}
	}
	last := cfg.Mutations
	all := func() bool { return engineRec.reached(last) && watchRec.reached(last) && pollRec.reached(last) }
	if err := waitUntil(ctx, 30*time.Second, "the engine, the watcher and the poller on n1 to see the last update", all); err != nil {
		return nil, err
	}
	stop()
	wg.Wait()
	eng, wat, pol := summarize(engineRec.samples(1, last)), summarize(watchRec.samples(1, last)), summarize(pollRec.samples(1, last))
	res.metric("replication p50 (visible in n1's engine)", us(eng.p50), "µs")
	res.metric("replication p99", us(eng.p99), "µs")
	res.metric("watcher told p50", us(wat.p50), "µs")
	res.metric("watcher told p99", us(wat.p99), "µs")
	res.metric(fmt.Sprintf("poller (%s) saw p50", cfg.PollInterval), us(pol.p50), "µs")
	res.metric(fmt.Sprintf("poller (%s) saw p99", cfg.PollInterval), us(pol.p99), "µs")
	res.note("latencies from the mutate call on n0; the watcher asks for every generation of n0; an update overtaken by a newer one counts as seen with it")

	if cfg.Watchers > 0 {
		if err := fanOut(ctx, cfg, src, obs, res); err != nil {
			return nil, err
		}
	}
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}

// fanOut measures the cost of cfg.Watchers watchers (latest view only) on
// obs while src mutates at cfg.Rate, against the same load without them.
func fanOut(ctx context.Context, cfg WatchConfig, src, obs *node.DeltaShard[seqView, seqView, seqView, seqView], res *Result) error {
	load := func() (cpu time.Duration, writes int, err error) {
		p := newPacer(cfg.Rate)
		defer p.close()
		c0 := processCPU()
		end := time.Now().Add(cfg.FanOutFor)
		for k := 1; time.Now().Before(end); k++ {
			p.wait(k)
			if _, _, err := src.MutateDelta(ctx, func(v *seqView) seqView { v.Seq++; return *v }); err != nil {
				return 0, 0, fmt.Errorf("bench: watch: fan-out mutate: %w", err)
			}
			writes++
		}
		return processCPU() - c0, writes, nil
	}
	baseCPU, baseWrites, err := load()
	if err != nil {
		return err
	}
	runtime.GC()
	heap0 := memStats().HeapAlloc
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	told := 0
	ready := make(chan struct{}, cfg.Watchers)
	for range cfg.Watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			first := true
			for _, err := range obs.Watch(wctx, node.WatchOptions{Nodes: []dstate.NodeID{"n0"}}) {
				if err != nil {
					break
				}
				if first {
					ready <- struct{}{}
					first = false
				}
				n++
			}
			mu.Lock()
			told += n
			mu.Unlock()
		}()
	}
	for range cfg.Watchers {
		select {
		case <-ready:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	runtime.GC()
	heap1 := memStats().HeapAlloc
	cpu, writes, err := load()
	if err != nil {
		return err
	}
	stop()
	wg.Wait()
	perWatcherHeap := (float64(heap1) - float64(heap0)) / float64(cfg.Watchers)
	extraCPU := cpu - baseCPU*time.Duration(writes)/time.Duration(max(baseWrites, 1))
	res.metric(fmt.Sprintf("heap per idle watcher (%d watchers)", cfg.Watchers), perWatcherHeap/1024, "KiB")
	res.metric("CPU per watcher per second of load", float64(extraCPU)/float64(time.Microsecond)/float64(cfg.Watchers)/cfg.FanOutFor.Seconds(), "µs")
	res.metric("process CPU under load, without watchers", float64(baseCPU)/float64(time.Millisecond)/cfg.FanOutFor.Seconds(), "ms/s")
	res.metric(fmt.Sprintf("process CPU under load, with %d watchers", cfg.Watchers), float64(cpu)/float64(time.Millisecond)/cfg.FanOutFor.Seconds(), "ms/s")
	res.metric("changes delivered per write per watcher", float64(told)/float64(max(writes, 1))/float64(cfg.Watchers), "")
	res.metric("writes/s with watchers (target rate)", float64(writes)/cfg.FanOutFor.Seconds(), "/s")
	res.note("fan-out watchers ask for the latest view only: one woken after several changes gets the newest, so fewer than one change per write is expected under load")
	return nil
}
