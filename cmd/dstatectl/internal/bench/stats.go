package bench

import (
	"runtime"
	"slices"
	"time"
)

// percentile returns the q-quantile (0 ≤ q ≤ 1) of sorted samples, by the
// nearest-rank method.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// latencies summarizes samples.
type latencies struct {
	n                  int
	p50, p99, p999, mx time.Duration
}

func summarize(samples []time.Duration) latencies {
	s := slices.Clone(samples)
	slices.Sort(s)
	if len(s) == 0 {
		return latencies{}
	}
	return latencies{n: len(s), p50: percentile(s, 0.50), p99: percentile(s, 0.99), p999: percentile(s, 0.999), mx: s[len(s)-1]}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// memStats returns the heap statistics after a full collection.
func memStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// mallocs returns the number of heap allocations so far (no collection).
func mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}

// pacer issues events at a fixed rate, evenly spaced. time.Sleep wakes up
// at millisecond granularity on Linux (the runtime's netpoller waits in
// whole milliseconds), which at rates above 1,000/s would issue the events
// due while it slept back to back on waking; waits under 2 ms therefore
// end in a sleeper (a timerfd on Linux), which keeps the spacing within
// tens of microseconds without spinning a CPU or holding a processor.
// Close releases it.
type pacer struct {
	start    time.Time
	interval time.Duration
	sl       *sleeper
}

func newPacer(rate float64) *pacer {
	return &pacer{start: time.Now(), interval: time.Duration(float64(time.Second) / rate), sl: newSleeper()}
}

// wait returns when event k (from 0) is due.
func (p *pacer) wait(k int) {
	due := p.start.Add(time.Duration(k) * p.interval)
	d := time.Until(due)
	if d > 2*time.Millisecond {
		time.Sleep(d - time.Millisecond)
		d = time.Until(due)
	}
	p.sl.sleep(d)
}

// close releases the pacer's sleeper.
func (p *pacer) close() { p.sl.close() }
