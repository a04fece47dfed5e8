package bench

import (
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// heapObjectsMetric is the bytes of heap objects, reachable or not yet
// swept: what the process holds of its heap.
const heapObjectsMetric = "/memory/classes/heap/objects:bytes"

// heapObjects returns the heap objects' bytes now.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: heapObjectsMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// settledHeap collects garbage and returns the heap objects' bytes then:
// the live heap.
func settledHeap() uint64 {
	runtime.GC()
	return heapObjects()
}

// heapSampler records the largest heap seen by sampling it every interval
// from its own goroutine, until stop.
type heapSampler struct {
	peak atomic.Uint64
	quit chan struct{}
	done chan struct{}
}

// startHeapSampler starts sampling now.
func startHeapSampler(every time.Duration) *heapSampler {
	h := &heapSampler{quit: make(chan struct{}), done: make(chan struct{})}
	h.peak.Store(heapObjects())
	go func() {
		defer close(h.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.quit:
				return
			case <-t.C:
				if v := heapObjects(); v > h.peak.Load() {
					h.peak.Store(v)
				}
			}
		}
	}()
	return h
}

// stop ends the sampling and returns the peak, sampled once more now.
func (h *heapSampler) stop() uint64 {
	close(h.quit)
	<-h.done
	return max(h.peak.Load(), heapObjects())
}

// mib returns n bytes in MiB.
func mib(n uint64) float64 { return float64(n) / (1 << 20) }
