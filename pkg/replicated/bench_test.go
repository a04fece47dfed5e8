package replicated_test

import (
	"context"
	"encoding/json"
	"maps"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/replicated"
)

// Benchmarks of the replicated Map in the agent's kv encoding (JSONMap):
// writes through the engine's mutate + delta path and through a shard,
// a peer applying deltas, and the memory a view holds per key. The
// copying map (copyKV: a Go map whose view is a copy, the kv states'
// definition before they became a Map) is the baseline.

var benchSizes = []int{10, 1000, 100000}

func keyOf(i int) string { return "key-" + strconv.Itoa(i) }

func filled(n int) replicated.MapValue[string, string] {
	m := make(map[string]string, n)
	for i := range n {
		m[keyOf(i)] = strconv.Itoa(i)
	}
	return replicated.NewMapValue(m)
}

var kvMap = replicated.Map[string, string]{StateName: "kv", Codec: replicated.JSONMap[string, string]()}

// BenchmarkMapWrite: one write (set an existing key) through
// DeltaEngine.MutateWithDelta and the encoding of the delta message.
func BenchmarkMapWrite(b *testing.B) {
	for _, n := range benchSizes {
		b.Run("map/keys="+strconv.Itoa(n), func(b *testing.B) {
			e, err := dstate.NewDeltaEngine(kvMap, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, filled(n))
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 256)
			i := 0
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				i++
				c := replicated.MapChange[string, string]{Key: keyOf(i % n), Value: "v"}
				r := e.MutateWithDelta(func(s *replicated.MapValue[string, string]) replicated.MapChange[string, string] {
					*s = s.Apply(c)
					return c
				})
				buf = dstate.AppendWire(buf[:0], &r.Actions[0].Message)
			}
			reportPerCPU(b, cpu0)
		})
	}
	for _, n := range benchSizes {
		b.Run("copy/keys="+strconv.Itoa(n), func(b *testing.B) {
			e, err := dstate.NewDeltaEngine(copyKV{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, filled(n).ToMap())
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 256)
			i := 0
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				i++
				c := replicated.MapChange[string, string]{Key: keyOf(i % n), Value: "v"}
				r := e.MutateWithDelta(func(s *map[string]string) replicated.MapChange[string, string] {
					(*s)[c.Key] = c.Value
					return c
				})
				buf = dstate.AppendWire(buf[:0], &r.Actions[0].Message)
			}
			reportPerCPU(b, cpu0)
		})
	}
}

// BenchmarkMapShardSet: MapShard.Set on a node of its own (the actor's
// mailbox round trip included; no peers).
func BenchmarkMapShardSet(b *testing.B) {
	for _, n := range benchSizes {
		b.Run("keys="+strconv.Itoa(n), func(b *testing.B) {
			n1, _, _, closeAll := twoNodes()
			defer closeAll()
			ctx := context.Background()
			m, err := replicated.RegisterMap(ctx, n1, kvMap, node.StateOptions[replicated.MapValue[string, string]]{Initial: filled(n)})
			if err != nil {
				b.Fatal(err)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				if _, err := m.Set(ctx, keyOf(i%n), "v"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// BenchmarkMapApplyDelta: a peer decodes and applies one delta to its
// view of a map of n keys.
func BenchmarkMapApplyDelta(b *testing.B) {
	for _, n := range benchSizes {
		b.Run("keys="+strconv.Itoa(n), func(b *testing.B) {
			view := filled(n)
			data := make([][]byte, 64)
			for i := range data {
				data[i], _ = kvMap.EncodeDelta(replicated.MapChange[string, string]{Key: keyOf(i * 7919 % n), Value: "v"})
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				d, err := kvMap.DecodeDelta(data[i%len(data)], 1)
				if err != nil {
					b.Fatal(err)
				}
				view, _ = kvMap.ApplyDelta(view, d)
			}
		})
	}
}

// BenchmarkMapViewMemory reports the heap one view holds per key (keys
// "key-N", values of up to 6 digits), next to a Go map of the same
// entries.
func BenchmarkMapViewMemory(b *testing.B) {
	for _, n := range benchSizes {
		b.Run("map/keys="+strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				heapPerKey(b, n, func() any { return filled(n) })
			}
		})
		b.Run("gomap/keys="+strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				heapPerKey(b, n, func() any { return filled(n).ToMap() })
			}
		})
	}
}

// heapPerKey reports the heap build's result holds per key, the keys' and
// values' strings included.
func heapPerKey(b *testing.B, n int, build func() any) {
	b.StopTimer()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/key")
	b.StartTimer()
}

// cpuTime returns the CPU time the process has used (user and system, all
// threads: the garbage collector's work included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportPerCPU reports writes per second of CPU time since cpu0: the
// throughput of one core, whatever else the machine runs meanwhile.
func reportPerCPU(b *testing.B, cpu0 time.Duration) {
	if used := cpuTime() - cpu0; used > 0 {
		b.ReportMetric(float64(b.N)/used.Seconds(), "writes/cpu-s")
	}
}

// copyKV is the kv definition before the kv states became a Map: a Go map
// whose view is a copy of it, and ApplyDelta copies too.
type copyKV struct{ dstate.Versions }

func (copyKV) Name() string                                       { return "kv" }
func (copyKV) WireVersion() uint32                                { return 1 }
func (copyKV) ProjectView(s *map[string]string) map[string]string { return maps.Clone(*s) }
func (copyKV) ProjectDelta(c replicated.MapChange[string, string]) replicated.MapChange[string, string] {
	return c
}
func (copyKV) ApplyDelta(v map[string]string, c replicated.MapChange[string, string]) (map[string]string, error) {
	out := maps.Clone(v)
	if c.Delete {
		delete(out, c.Key)
	} else {
		out[c.Key] = c.Value
	}
	return out, nil
}
func (copyKV) EncodeView(v map[string]string) ([]byte, error) { return json.Marshal(v) }
func (copyKV) DecodeView(b []byte, _ uint32) (m map[string]string, err error) {
	return m, json.Unmarshal(b, &m)
}
func (copyKV) EncodeDelta(c replicated.MapChange[string, string]) ([]byte, error) {
	return json.Marshal(c)
}
func (copyKV) DecodeDelta(b []byte, _ uint32) (c replicated.MapChange[string, string], err error) {
	return c, json.Unmarshal(b, &c)
}
func (copyKV) EncodeState(v map[string]string) ([]byte, error) { return json.Marshal(v) }
func (copyKV) DecodeState(b []byte, _ uint32) (m map[string]string, err error) {
	return m, json.Unmarshal(b, &m)
}
