package dstatetest

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Counter is the example simple state: a counter and a label.
type Counter struct {
	Count int64
	Label string
}

// CounterState defines Counter as a dstate.DistributedState named "counter".
// Version is its wire and storage version (1 when zero); it decodes its own
// version and, if AlsoReads is set, that version too.
type CounterState struct {
	Version   uint32
	AlsoReads uint32
}

var _ dstate.DistributedState[Counter] = CounterState{}

// Name returns "counter".
func (CounterState) Name() string { return "counter" }

// WireVersion returns the version it writes.
func (c CounterState) WireVersion() uint32 { return max(c.Version, 1) }

// StorageVersion returns the version it writes.
func (c CounterState) StorageVersion() uint32 { return max(c.Version, 1) }

// EncodeState encodes a Counter.
func (CounterState) EncodeState(s Counter) ([]byte, error) {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(s.Label))
	b = binary.AppendVarint(b, s.Count)
	b = binary.AppendUvarint(b, uint64(len(s.Label)))
	return append(b, s.Label...), nil
}

// DecodeState decodes a Counter of a readable version.
func (c CounterState) DecodeState(data []byte, version uint32) (Counter, error) {
	if version != c.WireVersion() && (c.AlsoReads == 0 || version != c.AlsoReads) {
		return Counter{}, dstate.UnknownVersionError(version)
	}
	var s Counter
	n, k := binary.Varint(data)
	if k <= 0 {
		return s, dstate.MalformedError("counter: bad count")
	}
	s.Count = n
	l, k2 := binary.Uvarint(data[k:])
	if k2 <= 0 || l != uint64(len(data)-k-k2) {
		return s, dstate.MalformedError("counter: bad label length")
	}
	s.Label = string(data[k+k2:])
	return s, nil
}

// Gauges is the example delta state's private value: named gauges plus a
// private total that is not replicated.
type Gauges struct {
	Values map[string]int64
	Total  int64 // private: not in the view
}

// GaugesView is the replicated view of Gauges.
type GaugesView map[string]int64

// GaugeChange is one mutation: set (or, with Delete, remove) one gauge.
type GaugeChange struct {
	Key    string
	Value  int64
	Delete bool
	// Urgency overrides the change's sync urgency (default Default).
	Urgency dstate.SyncUrgency
}

// GaugeDelta is the view delta of one change.
type GaugeDelta struct {
	Key    string
	Value  int64
	Delete bool
}

// GaugesState defines Gauges as a dstate.DeltaDistributedState named
// "gauges". Version is its wire version (1 when zero); AlsoReads is a second
// version it decodes.
type GaugesState struct {
	Version   uint32
	AlsoReads uint32
}

var _ dstate.DeltaDistributedState[Gauges, GaugesView, GaugeDelta, GaugeChange] = GaugesState{}

// NewGauges returns an empty Gauges value.
func NewGauges() Gauges { return Gauges{Values: map[string]int64{}} }

// Set returns a mutation setting key to v.
func Set(key string, v int64) func(*Gauges) GaugeChange {
	return func(g *Gauges) GaugeChange {
		if g.Values == nil {
			g.Values = map[string]int64{}
		}
		g.Total += v - g.Values[key]
		g.Values[key] = v
		return GaugeChange{Key: key, Value: v}
	}
}

// Name returns "gauges".
func (GaugesState) Name() string { return "gauges" }

// WireVersion returns the version it writes.
func (g GaugesState) WireVersion() uint32 { return max(g.Version, 1) }

// StorageVersion returns 1.
func (GaugesState) StorageVersion() uint32 { return 1 }

// ProjectView copies the public gauges.
func (GaugesState) ProjectView(s *Gauges) GaugesView {
	v := make(GaugesView, len(s.Values))
	for k, x := range s.Values {
		v[k] = x
	}
	return v
}

// ProjectDelta turns a change into its delta.
func (GaugesState) ProjectDelta(c GaugeChange) GaugeDelta {
	return GaugeDelta{Key: c.Key, Value: c.Value, Delete: c.Delete}
}

// ApplyDelta returns a new view with the delta applied.
func (GaugesState) ApplyDelta(v GaugesView, d GaugeDelta) (GaugesView, error) {
	out := make(GaugesView, len(v)+1)
	for k, x := range v {
		out[k] = x
	}
	if d.Delete {
		delete(out, d.Key)
	} else {
		out[d.Key] = d.Value
	}
	return out, nil
}

// SyncUrgency returns the change's Urgency.
func (GaugesState) SyncUrgency(_, _ GaugesView, c GaugeChange) dstate.SyncUrgency { return c.Urgency }

func (g GaugesState) readable(v uint32) error {
	if v != g.WireVersion() && (g.AlsoReads == 0 || v != g.AlsoReads) {
		return dstate.UnknownVersionError(v)
	}
	return nil
}

// EncodeView encodes a view as count, then sorted (key, value) pairs.
func (GaugesState) EncodeView(v GaugesView) ([]byte, error) { return encodeGauges(v), nil }

// DecodeView decodes a view.
func (g GaugesState) DecodeView(data []byte, wv uint32) (GaugesView, error) {
	if err := g.readable(wv); err != nil {
		return nil, err
	}
	return decodeGauges(data)
}

// EncodeDelta encodes a delta.
func (GaugesState) EncodeDelta(d GaugeDelta) ([]byte, error) {
	b := make([]byte, 0, 12+len(d.Key))
	flag := byte(0)
	if d.Delete {
		flag = 1
	}
	b = append(b, flag)
	b = binary.AppendUvarint(b, uint64(len(d.Key)))
	b = append(b, d.Key...)
	return binary.AppendVarint(b, d.Value), nil
}

// DecodeDelta decodes a delta.
func (g GaugesState) DecodeDelta(data []byte, wv uint32) (GaugeDelta, error) {
	if err := g.readable(wv); err != nil {
		return GaugeDelta{}, err
	}
	if len(data) < 1 || data[0] > 1 {
		return GaugeDelta{}, dstate.MalformedError("gauges: bad delta flag")
	}
	d := GaugeDelta{Delete: data[0] == 1}
	r := data[1:]
	l, k := binary.Uvarint(r)
	if k <= 0 || l > uint64(len(r)-k) {
		return GaugeDelta{}, dstate.MalformedError("gauges: bad delta key")
	}
	d.Key = string(r[k : k+int(l)])
	r = r[k+int(l):]
	v, k := binary.Varint(r)
	if k <= 0 || k != len(r) {
		return GaugeDelta{}, dstate.MalformedError("gauges: bad delta value")
	}
	d.Value = v
	return d, nil
}

// EncodeState encodes the gauges and the private total.
func (GaugesState) EncodeState(s Gauges) ([]byte, error) {
	return binary.AppendVarint(encodeGauges(s.Values), s.Total), nil
}

// DecodeState decodes a stored state of storage version 1.
func (GaugesState) DecodeState(data []byte, sv uint32) (Gauges, error) {
	if sv != 1 {
		return Gauges{}, dstate.UnknownVersionError(sv)
	}
	v, rest, err := decodeGaugesPrefix(data)
	if err != nil {
		return Gauges{}, err
	}
	t, k := binary.Varint(rest)
	if k <= 0 || k != len(rest) {
		return Gauges{}, dstate.MalformedError("gauges: bad total")
	}
	return Gauges{Values: v, Total: t}, nil
}

// encodeGauges writes the sorted pairs into one buffer of the exact size.
func encodeGauges(v map[string]int64) []byte {
	var stack [16]string // small views sort their keys without allocating
	keys := stack[:0]
	size := binary.MaxVarintLen64 // count, and room for a caller's trailer
	for k, x := range v {
		keys = append(keys, k)
		size += uvarintLen(uint64(len(k))) + len(k) + uvarintLen(uint64(x)<<1^uint64(x>>63))
	}
	sortStrings(keys)
	b := binary.AppendUvarint(make([]byte, 0, size), uint64(len(keys)))
	for _, k := range keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendVarint(b, v[k])
	}
	return b
}

func decodeGauges(data []byte) (GaugesView, error) {
	v, rest, err := decodeGaugesPrefix(data)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, dstate.MalformedError("gauges: %d trailing bytes", len(rest))
	}
	return v, nil
}

func decodeGaugesPrefix(data []byte) (map[string]int64, []byte, error) {
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)) {
		return nil, nil, dstate.MalformedError("gauges: bad count")
	}
	r := data[k:]
	v := make(map[string]int64, n)
	for i := uint64(0); i < n; i++ {
		l, k := binary.Uvarint(r)
		if k <= 0 || l > uint64(len(r)-k) {
			return nil, nil, dstate.MalformedError("gauges: bad key %d", i)
		}
		key := string(r[k : k+int(l)])
		r = r[k+int(l):]
		x, k2 := binary.Varint(r)
		if k2 <= 0 {
			return nil, nil, dstate.MalformedError("gauges: bad value %d", i)
		}
		r = r[k2:]
		v[key] = x
	}
	return v, r, nil
}

func sortStrings(s []string) { slices.Sort(s) }

// uvarintLen is the encoded length of x as a uvarint.
func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// String formats a view deterministically ("{a=1 b=2}").
func (v GaugesView) String() string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sortStrings(keys)
	s := "{"
	for i, k := range keys {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", k, v[k])
	}
	return s + "}"
}

// ReadsWire reports whether c decodes wire version v besides its own
// (AlsoReads); see SimWireReader.
func (c CounterState) ReadsWire(v uint32) bool { return c.AlsoReads != 0 && v == c.AlsoReads }

// ReadsWire reports whether g decodes wire version v besides its own
// (AlsoReads); see SimWireReader.
func (g GaugesState) ReadsWire(v uint32) bool { return g.AlsoReads != 0 && v == g.AlsoReads }
