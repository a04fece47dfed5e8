package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// LatencyConfig configures [Latency].
type LatencyConfig struct {
	// Mutations is the number of dstate mutations of the main run.
	Mutations int
	// Rate is the main run's mutation rate per second.
	Rate float64
	// Rounds of the baseline comparison: each round runs dstate, memberlist
	// and serf one after the other with the same updates at BaselineRate.
	Rounds int
	// BaselineUpdates is the number of updates per system and round.
	BaselineUpdates int
	// BaselineRate is the update rate of the comparison rounds.
	BaselineRate float64
	// GossipInterval overrides memberlist's LAN preset (200 ms) for both
	// baselines; 0 keeps it.
	GossipInterval time.Duration
}

// DefaultLatencyConfig is the full run: 100,000 mutations at 10,000/s,
// then 3 rounds of 200 updates at 100/s per system.
func DefaultLatencyConfig() LatencyConfig {
	return LatencyConfig{Mutations: 100_000, Rate: 10_000, Rounds: 3, BaselineUpdates: 200, BaselineRate: 100}
}

// Validate names the first invalid field.
func (c LatencyConfig) Validate() error {
	switch {
	case c.Mutations < 1:
		return fmt.Errorf("bench: latency: Mutations %d, want ≥ 1", c.Mutations)
	case c.Rate <= 0:
		return fmt.Errorf("bench: latency: Rate %g, want > 0", c.Rate)
	case c.Rounds < 0:
		return fmt.Errorf("bench: latency: Rounds %d, want ≥ 0", c.Rounds)
	case c.Rounds > 0 && (c.BaselineUpdates < 1 || c.BaselineRate <= 0):
		return fmt.Errorf("bench: latency: BaselineUpdates %d and BaselineRate %g, want ≥ 1 and > 0", c.BaselineUpdates, c.BaselineRate)
	}
	return nil
}

// dstateReplicator sends updates as dstate delta mutations over three
// nodes on loopback TCP.
type dstateReplicator struct {
	c    *loopCluster
	src  *node.DeltaShard[seqView, seqView, seqView, seqView]
	recs []*recorder
	ctx  context.Context
}

func newDstate(ctx context.Context, log *sendLog) (*dstateReplicator, error) {
	c, err := newLoopCluster(3, loopOptions{})
	if err != nil {
		return nil, err
	}
	r := &dstateReplicator{c: c, ctx: ctx}
	var obs []*node.DeltaShard[seqView, seqView, seqView, seqView]
	for i, n := range c.nodes {
		def := seqState{name: "seq"}
		if i > 0 {
			def.rec = newRecorder(log)
			r.recs = append(r.recs, def.rec)
		}
		s, err := node.RegisterDelta(ctx, n, def, node.StateOptions[seqView]{Config: dstate.DefaultStateConfig()})
		if err != nil {
			c.close()
			return nil, err
		}
		if i == 0 {
			r.src = s
		} else {
			obs = append(obs, s)
		}
	}
	c.joinAll()
	err = waitUntil(ctx, 10*time.Second, "the observers to hold n0's view", func() bool {
		for _, o := range obs {
			if v, ok := o.Views().Get("n0"); !ok || v.Generation.IsZero() {
				return false
			}
		}
		return true
	})
	if err != nil {
		c.close()
		return nil, err
	}
	return r, nil
}

func (r *dstateReplicator) name() string { return "dstate" }

func (r *dstateReplicator) update(k int) error {
	_, _, err := r.src.MutateDelta(r.ctx, func(v *seqView) seqView {
		v.Seq, v.CPU, v.Conn = uint64(k), int64(k%100), int64(k%1000)
		return *v
	})
	return err
}

func (r *dstateReplicator) observers() []*recorder { return r.recs }
func (r *dstateReplicator) close()                 { r.c.close() }

// drive issues updates from..to at rate on r, then waits (at most settle)
// until every observer saw the last one. It returns the samples of every
// observer and the number of (update, observer) pairs never seen.
func drive(ctx context.Context, r replicator, log *sendLog, from, to int, rate float64, settle time.Duration) ([]time.Duration, int, time.Duration, error) {
	p := newPacer(rate)
	defer p.close()
	for k := from; k <= to; k++ {
		if k&63 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, 0, 0, err
			}
		}
		p.wait(k - from)
		log.mark(k)
		if err := r.update(k); err != nil {
			return nil, 0, 0, fmt.Errorf("bench: %s update %d: %w", r.name(), k, err)
		}
	}
	issued := time.Since(p.start)
	_ = waitUntil(ctx, settle, "the last update", func() bool {
		for _, o := range r.observers() {
			if !o.reached(to) {
				return false
			}
		}
		return true
	})
	if err := ctx.Err(); err != nil {
		return nil, 0, 0, err
	}
	var all []time.Duration
	lost := 0
	for _, o := range r.observers() {
		hi := min(to, int(o.next.Load())-1)
		if hi >= from {
			all = append(all, o.samples(from, hi)...)
		}
		lost += to - max(hi, from-1)
	}
	return all, lost, issued, nil
}

// Latency runs the latency scenario: the main dstate run, then the
// alternating comparison rounds against memberlist and serf.
func Latency(ctx context.Context, cfg LatencyConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := newResult("latency", "mutate on n0 at a fixed rate → applied on n1 and n2 (3 nodes, loopback TCP)")
	res.param("mutations", "%d", cfg.Mutations)
	res.param("rate", "%g/s", cfg.Rate)
	res.param("rounds", "%d", cfg.Rounds)
	res.param("baseline-updates", "%d", cfg.BaselineUpdates)
	res.param("baseline-rate", "%g/s", cfg.BaselineRate)
	gossip := gossipOptions{GossipInterval: cfg.GossipInterval}
	gi := lanConfig("x", gossip).GossipInterval
	res.param("gossip-interval", "%s", gi)

	// Main run.
	total := cfg.Mutations + cfg.Rounds*cfg.BaselineUpdates
	dlog := newSendLog(total)
	d, err := newDstate(ctx, dlog)
	if err != nil {
		return nil, err
	}
	defer d.close()
	samples, lost, issued, err := drive(ctx, d, dlog, 1, cfg.Mutations, cfg.Rate, 10*time.Second)
	if err != nil {
		return nil, err
	}
	main := summarize(samples)
	res.atMost("dstate p50", us(main.p50), "µs", 150)
	res.atMost("dstate p99", us(main.p99), "µs", 1000)
	res.metric("dstate p99.9", us(main.p999), "µs")
	res.metric("dstate max", us(main.mx), "µs")
	res.metric("dstate samples", float64(main.n), "updates×observers")
	res.metric("dstate achieved rate", float64(cfg.Mutations)/issued.Seconds(), "mutations/s")
	if lost > 0 {
		res.metric("dstate not seen", float64(lost), "updates×observers")
	}
	mb, se := d.c.hostDrops()
	if mb+se > 0 {
		res.note("dstate hosts dropped %d frames at a state mailbox and %d at the transport", mb, se)
	}
	if cfg.Rounds == 0 {
		res.Elapsed = Duration(time.Since(start))
		return res, nil
	}

	// Comparison rounds: dstate, memberlist and serf in turn, same updates.
	mlog, slog := newSendLog(cfg.Rounds*cfg.BaselineUpdates), newSendLog(cfg.Rounds*cfg.BaselineUpdates)
	ml, err := newMemberlist(mlog, gossip)
	if err != nil {
		return nil, err
	}
	defer ml.close()
	sf, err := newSerf(slog, gossip)
	if err != nil {
		return nil, err
	}
	defer sf.close()
	type series struct {
		r       replicator
		log     *sendLog
		offset  int
		samples []time.Duration
		lost    int
	}
	all := []*series{{r: d, log: dlog, offset: cfg.Mutations}, {r: ml, log: mlog}, {r: sf, log: slog}}
	settle := 5*time.Second + 20*gi
	for round := range cfg.Rounds {
		for _, s := range all {
			from := s.offset + round*cfg.BaselineUpdates + 1
			to := from + cfg.BaselineUpdates - 1
			got, lost, _, err := drive(ctx, s.r, s.log, from, to, cfg.BaselineRate, settle)
			if err != nil {
				return nil, err
			}
			s.samples = append(s.samples, got...)
			s.lost += lost
		}
	}
	base := summarize(all[0].samples)
	res.metric(fmt.Sprintf("dstate @%g/s p50", cfg.BaselineRate), us(base.p50), "µs")
	res.metric(fmt.Sprintf("dstate @%g/s p99", cfg.BaselineRate), us(base.p99), "µs")
	for _, s := range all[1:] {
		l := summarize(s.samples)
		n := s.r.name()
		res.metric(n+" p50", us(l.p50), "µs")
		res.metric(n+" p99", us(l.p99), "µs")
		res.metric(n+" p99.9", us(l.p999), "µs")
		res.metric(n+" samples", float64(l.n), "updates×observers")
		if s.lost > 0 {
			res.metric(n+" not seen", float64(s.lost), "updates×observers")
		}
		res.atLeast(n+"/dstate p50 ratio", ratio(float64(l.p50), float64(base.p50)), "×", 100)
		res.metric(n+"/dstate p99 ratio", ratio(float64(l.p99), float64(base.p99)), "×")
	}
	res.note("a sample is the time from issuing update k on member 0 until an observer holds k or a later update, " +
		"recorded when the receiving engine applies it (dstate), in NotifyMsg (memberlist) or on the event channel (serf)")
	res.note("ratios compare the same updates at the baseline rate in alternating rounds; memberlist uses one named " +
		"broadcast per update (a newer update invalidates a queued one), serf sends uncoalesced user events; both use " +
		"memberlist.DefaultLANConfig with the gossip interval above")
	res.note("time.Sleep wakes at ~1 ms granularity here, so above 1,000/s the pacer issues the updates due in a " +
		"burst on each wake-up: the rate is exact on average")
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}
