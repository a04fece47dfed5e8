package dstate_test

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// The benchmarks of the engine's hot paths. They run on dstate.SystemClock,
// the clock a real host uses, so the clock reads are part of the figures.
// Run them with
//
//	go test -run '^$' -bench . -benchmem ./pkg/dstate
//
// BENCHMARKS.md records the figures and the targets they are held to.

// benchInc is the incarnation of the benchmarks' peers.
const benchInc uint64 = 1_700_000_000_000

// Load is a small fixed-size view, the shape of the "which node has the
// least load" states the library is for: projecting it copies a struct.
type Load struct {
	CPU, Mem, Conns int64
}

// LoadChange sets one field of a Load; it is also the view delta.
type LoadChange struct {
	Field uint8 // 0 CPU, 1 Mem, 2 Conns
	Value int64
}

// loadState is a DeltaDistributedState whose private value is its view.
type loadState struct{}

var _ dstate.DeltaDistributedState[Load, Load, LoadChange, LoadChange] = loadState{}

func (loadState) Name() string                                           { return "load" }
func (loadState) WireVersion() uint32                                    { return 1 }
func (loadState) StorageVersion() uint32                                 { return 1 }
func (loadState) ProjectView(s *Load) Load                               { return *s }
func (loadState) ProjectDelta(c LoadChange) LoadChange                   { return c }
func (loadState) SyncUrgency(_, _ Load, _ LoadChange) dstate.SyncUrgency { return dstate.Default }

func (loadState) ApplyDelta(v Load, d LoadChange) (Load, error) {
	switch d.Field {
	case 0:
		v.CPU = d.Value
	case 1:
		v.Mem = d.Value
	case 2:
		v.Conns = d.Value
	default:
		return v, dstate.MalformedError("load: bad field %d", d.Field)
	}
	return v, nil
}

func (loadState) EncodeView(v Load) ([]byte, error) {
	b := make([]byte, 0, 3*binary.MaxVarintLen64)
	b = binary.AppendVarint(b, v.CPU)
	b = binary.AppendVarint(b, v.Mem)
	return binary.AppendVarint(b, v.Conns), nil
}

func (loadState) DecodeView(data []byte, _ uint32) (Load, error) {
	var v Load
	var k int
	for _, p := range []*int64{&v.CPU, &v.Mem, &v.Conns} {
		x, n := binary.Varint(data[k:])
		if n <= 0 {
			return Load{}, dstate.MalformedError("load: bad view")
		}
		*p, k = x, k+n
	}
	if k != len(data) {
		return Load{}, dstate.MalformedError("load: trailing bytes")
	}
	return v, nil
}

func (loadState) EncodeDelta(d LoadChange) ([]byte, error) {
	b := make([]byte, 0, 1+binary.MaxVarintLen64)
	return binary.AppendVarint(append(b, d.Field), d.Value), nil
}

func (loadState) DecodeDelta(data []byte, _ uint32) (LoadChange, error) {
	if len(data) < 2 {
		return LoadChange{}, dstate.MalformedError("load: short delta")
	}
	x, n := binary.Varint(data[1:])
	if n <= 0 || 1+n != len(data) {
		return LoadChange{}, dstate.MalformedError("load: bad delta")
	}
	return LoadChange{Field: data[0], Value: x}, nil
}

func (s loadState) EncodeState(v Load) ([]byte, error) { return s.EncodeView(v) }

func (s loadState) DecodeState(data []byte, v uint32) (Load, error) { return s.DecodeView(data, v) }

func peerID(i int) dstate.NodeID { return dstate.NodeID("peer-" + strconv.Itoa(i)) }

// gaugesWith returns a Gauges value of n keys.
func gaugesWith(n int) dstatetest.Gauges {
	g := dstatetest.NewGauges()
	for i := range n {
		dstatetest.Set("g"+strconv.Itoa(i), int64(i))(&g)
	}
	return g
}

// BenchmarkMutateSimple measures a simple state's mutation with active
// push: the engine re-encodes the whole Counter as a FullSnapshot.
func BenchmarkMutateSimple(b *testing.B) {
	e, err := dstate.NewSimpleEngine[dstatetest.Counter](dstatetest.CounterState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, dstatetest.Counter{Label: "requests"})
	if err != nil {
		b.Fatal(err)
	}
	incr := func(c *dstatetest.Counter) { c.Count++ }
	b.Run("mutate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r := e.Mutate(incr, dstate.Default); len(r.Actions) != 1 {
				b.Fatalf("got %d actions, want 1", len(r.Actions))
			}
		}
	})
	b.Run("mutate+wire", func(b *testing.B) {
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			r := e.Mutate(incr, dstate.Default)
			buf = dstate.AppendWire(buf[:0], &r.Actions[0].Message)
		}
	})
}

// BenchmarkMutateWithDelta measures a delta mutation with active push: the
// change is applied, the view and the delta projected, the delta encoded
// and the DeltaUpdate wire-encoded into a reused buffer (what the host does
// with a Broadcast). "load" is a struct view; "gauges-N" is the map view of
// dstatetest.GaugesState holding N keys, whose ProjectView copies the map.
func BenchmarkMutateWithDelta(b *testing.B) {
	b.Run("load", func(b *testing.B) {
		e, err := dstate.NewDeltaEngine(loadState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, Load{})
		if err != nil {
			b.Fatal(err)
		}
		var v int64
		set := func(l *Load) LoadChange { v++; l.CPU = v; return LoadChange{Field: 0, Value: v} }
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			r := e.MutateWithDelta(set)
			buf = dstate.AppendWire(buf[:0], &r.Actions[0].Message)
		}
	})
	for _, keys := range []int{1, 8, 64} {
		b.Run("gauges-"+strconv.Itoa(keys), func(b *testing.B) {
			e, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, gaugesWith(keys))
			if err != nil {
				b.Fatal(err)
			}
			var v int64
			set := func(g *dstatetest.Gauges) dstatetest.GaugeChange {
				v++
				g.Total += v - g.Values["g0"]
				g.Values["g0"] = v
				return dstatetest.GaugeChange{Key: "g0", Value: v}
			}
			buf := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				r := e.MutateWithDelta(set)
				if r.Actions[0].Message.Kind != dstate.KindDeltaUpdate {
					b.Fatalf("got %s, want a DeltaUpdate", r.Actions[0].Message.Kind)
				}
				buf = dstate.AppendWire(buf[:0], &r.Actions[0].Message)
			}
		})
	}
}

// BenchmarkInboundDelta measures HandleWire of a DeltaUpdate that is
// exactly one age ahead of the held view (the accepted path).
func BenchmarkInboundDelta(b *testing.B) {
	// loadPeer returns an engine holding n2's load view and a delta of n2
	// one age ahead of it.
	loadPeer := func(b *testing.B) (*dstate.Engine[Load, Load], dstate.WireMessage) {
		e, err := dstate.NewDeltaEngine(loadState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, Load{})
		if err != nil {
			b.Fatal(err)
		}
		data, _ := loadState{}.EncodeView(Load{CPU: 1})
		m := &dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "load", Source: "n2", Generation: dstate.Generation{Incarnation: benchInc}, WireVersion: 1, Data: data}
		e.HandleWire(m)
		delta, _ := loadState{}.EncodeDelta(LoadChange{Field: 1, Value: 42})
		return e.Engine, dstate.WireMessage{Kind: dstate.KindDeltaUpdate, State: "load", Source: "n2", Generation: m.Generation, WireVersion: 1, Data: delta}
	}
	b.Run("load", func(b *testing.B) {
		e, m := loadPeer(b)
		runInboundDeltas(b, e, &m)
	})
	b.Run("load-run64", func(b *testing.B) {
		// HandleDeltaRun of 64 deltas from one peer, as a host that reads
		// them from one connection at once delivers them; per delta.
		e, m := loadPeer(b)
		m.SentUnixMs = int64(benchInc)
		run := make([]dstate.WireMessage, 64)
		for i := range run {
			run[i] = m
		}
		before := e.Metrics().DeltasReceived
		b.ReportAllocs()
		n, age := uint64(0), m.Generation.Age
		for b.Loop() {
			for i := range run {
				age++
				run[i].Generation.Age = age
			}
			e.HandleDeltaRun(run)
			n += uint64(len(run))
		}
		if got := e.Metrics().DeltasReceived - before; got != n {
			b.Fatalf("got %d deltas applied, want %d", got, n)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/delta")
	})
	for _, keys := range []int{1, 8, 64} {
		b.Run("gauges-"+strconv.Itoa(keys), func(b *testing.B) {
			e, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, dstatetest.NewGauges())
			if err != nil {
				b.Fatal(err)
			}
			data, _ := dstatetest.GaugesState{}.EncodeView(gaugesWith(keys).Values)
			m := &dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "gauges", Source: "n2", Generation: dstate.Generation{Incarnation: benchInc}, WireVersion: 1, Data: data}
			e.HandleWire(m)
			delta, _ := dstatetest.GaugesState{}.EncodeDelta(dstatetest.GaugeDelta{Key: "g0", Value: 42})
			m = &dstate.WireMessage{Kind: dstate.KindDeltaUpdate, State: "gauges", Source: "n2", Generation: m.Generation, WireVersion: 1, Data: delta}
			runInboundDeltas(b, e.Engine, m)
		})
	}
}

func runInboundDeltas[S, V any](b *testing.B, e *dstate.Engine[S, V], m *dstate.WireMessage) {
	b.Helper()
	before := e.Metrics().DeltasReceived
	b.ReportAllocs()
	n := uint64(0)
	for b.Loop() {
		m.Generation.Age++
		m.SentUnixMs = int64(benchInc) // a constant: latency is measured but not meaningful here
		e.HandleWire(m)
		n++
	}
	if got := e.Metrics().DeltasReceived - before; got != n {
		b.Fatalf("got %d deltas applied, want %d", got, n)
	}
}

// BenchmarkInboundSnapshot measures HandleWire of a newer FullSnapshot
// (decode and replace the view).
func BenchmarkInboundSnapshot(b *testing.B) {
	b.Run("counter", func(b *testing.B) {
		e, err := dstate.NewSimpleEngine[dstatetest.Counter](dstatetest.CounterState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, dstatetest.Counter{})
		if err != nil {
			b.Fatal(err)
		}
		data, _ := dstatetest.CounterState{}.EncodeState(dstatetest.Counter{Count: 7, Label: "requests"})
		m := &dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "counter", Source: "n2", Generation: dstate.Generation{Incarnation: benchInc}, WireVersion: 1, Data: data}
		runInboundSnapshots(b, e, m)
	})
	for _, keys := range []int{8, 64} {
		b.Run("gauges-"+strconv.Itoa(keys), func(b *testing.B) {
			e, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, dstatetest.NewGauges())
			if err != nil {
				b.Fatal(err)
			}
			data, _ := dstatetest.GaugesState{}.EncodeView(gaugesWith(keys).Values)
			m := &dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "gauges", Source: "n2", Generation: dstate.Generation{Incarnation: benchInc}, WireVersion: 1, Data: data}
			runInboundSnapshots(b, e.Engine, m)
		})
	}
}

func runInboundSnapshots[S, V any](b *testing.B, e *dstate.Engine[S, V], m *dstate.WireMessage) {
	b.Helper()
	before := e.Metrics().SnapshotsReceived
	b.ReportAllocs()
	n := uint64(0)
	for b.Loop() {
		m.Generation.Age++
		e.HandleWire(m)
		n++
	}
	if got := e.Metrics().SnapshotsReceived - before; got != n {
		b.Fatalf("got %d snapshots accepted, want %d", got, n)
	}
}

// BenchmarkQuery measures a query over every node's view: the freshness
// check (Engine.Query) plus a result computed by iterating Views without
// copying them ("least loaded node"). "map" is the same query through
// Views.Map, which copies every view, for comparison.
func BenchmarkQuery(b *testing.B) {
	for _, peers := range []int{10, 100} {
		e, err := dstate.NewDeltaEngine(loadState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, Load{CPU: 50})
		if err != nil {
			b.Fatal(err)
		}
		for i := range peers {
			data, _ := loadState{}.EncodeView(Load{CPU: int64(i*37%101 + 1)})
			e.HandleWire(&dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "load", Source: peerID(i), Generation: dstate.Generation{Incarnation: benchInc}, WireVersion: 1, Data: data})
		}
		if got := e.Views().Len(); got != peers+1 {
			b.Fatalf("got %d views, want %d", got, peers+1)
		}
		b.Run("peers-"+strconv.Itoa(peers), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := e.Query(time.Minute); !r.Fresh() {
					b.Fatalf("stale: %v", r.Stale)
				}
				best, min := dstate.NodeID(""), int64(1<<62)
				for id, v := range e.Views().All {
					if v.Value.CPU < min {
						best, min = id, v.Value.CPU
					}
				}
				if best == "" {
					b.Fatal("no node")
				}
			}
		})
		b.Run("peers-"+strconv.Itoa(peers)+"-map", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := e.Query(time.Minute); !r.Fresh() {
					b.Fatalf("stale: %v", r.Stale)
				}
				best, min := dstate.NodeID(""), int64(1<<62)
				for id, v := range e.Views().Map() {
					if v.CPU < min {
						best, min = id, v.CPU
					}
				}
				if best == "" {
					b.Fatal("no node")
				}
			}
		})
	}
}

// benchMessages are typical messages: a delta of one gauge, a snapshot of
// 16 gauges, a snapshot request and a change feed of 8 notices.
func benchMessages() []struct {
	name string
	m    dstate.WireMessage
} {
	delta, _ := dstatetest.GaugesState{}.EncodeDelta(dstatetest.GaugeDelta{Key: "cpu", Value: 73})
	snap, _ := dstatetest.GaugesState{}.EncodeView(gaugesWith(16).Values)
	g := dstate.Generation{Incarnation: benchInc, Age: 12345}
	ms := int64(benchInc) + 98765
	feed := make([]dstate.ChangeNotification, 8)
	for i := range feed {
		feed[i] = dstate.ChangeNotification{State: "gauges", Source: peerID(i), Generation: g}
	}
	return []struct {
		name string
		m    dstate.WireMessage
	}{
		{"delta", dstate.WireMessage{Kind: dstate.KindDeltaUpdate, State: "gauges", Source: "node-1", Generation: g, WireVersion: 1, CreatedUnixMs: int64(benchInc), ModifiedUnixMs: ms, SentUnixMs: ms, Data: delta}},
		{"snapshot16", dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "gauges", Source: "node-1", Generation: g, WireVersion: 1, CreatedUnixMs: int64(benchInc), ModifiedUnixMs: ms, SentUnixMs: ms, Data: snap}},
		{"request", dstate.WireMessage{Kind: dstate.KindRequestSnapshot, State: "gauges", Source: "node-1", SentUnixMs: ms}},
		{"feed8", dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: "node-1", SentUnixMs: ms, Notifications: feed}},
	}
}

// BenchmarkEncodeWire measures EncodeWire (a new exact-size buffer) and
// AppendWire into a reused buffer.
func BenchmarkEncodeWire(b *testing.B) {
	for _, tc := range benchMessages() {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(dstate.EncodedSize(&tc.m)))
			for b.Loop() {
				_ = dstate.EncodeWire(&tc.m)
			}
		})
		b.Run(tc.name+"-append", func(b *testing.B) {
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			b.SetBytes(int64(dstate.EncodedSize(&tc.m)))
			for b.Loop() {
				buf = dstate.AppendWire(buf[:0], &tc.m)
			}
		})
	}
}

// BenchmarkDecodeWire measures DecodeWire of the same messages.
func BenchmarkDecodeWire(b *testing.B) {
	for _, tc := range benchMessages() {
		b.Run(tc.name, func(b *testing.B) {
			data := dstate.EncodeWire(&tc.m)
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := dstate.DecodeWire(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGaugesEncodeView measures the example delta state's snapshot
// encoding (sorted keys, one exact-size buffer).
func BenchmarkGaugesEncodeView(b *testing.B) {
	for _, keys := range []int{8, 64} {
		b.Run("keys-"+strconv.Itoa(keys), func(b *testing.B) {
			v := dstatetest.GaugesView(gaugesWith(keys).Values)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := (dstatetest.GaugesState{}).EncodeView(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
