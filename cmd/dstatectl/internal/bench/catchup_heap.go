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

// liveHeapMetric is the heap the last GC found reachable: unlike the heap
// objects, it holds no garbage, but it is only as recent as that GC.
const liveHeapMetric = "/gc/heap/live:bytes"

// heapObjects returns the heap objects' bytes now.
func heapObjects() uint64 { return readUint64(heapObjectsMetric) }

// liveHeap returns the heap the last GC marked reachable.
func liveHeap() uint64 { return readUint64(liveHeapMetric) }

func readUint64(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
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
	live atomic.Uint64 // the largest live heap a GC marked meanwhile
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
				if v := liveHeap(); v > h.live.Load() {
					h.live.Store(v)
				}
			}
		}
	}()
	return h
}

// stop ends the sampling and returns the peak, sampled once more now, and
// the largest live heap a GC marked meanwhile.
func (h *heapSampler) stop() (peak, live uint64) {
	close(h.quit)
	<-h.done
	return max(h.peak.Load(), heapObjects()), max(h.live.Load(), liveHeap())
}

// mib returns n bytes in MiB.
func mib(n uint64) float64 { return float64(n) / (1 << 20) }
