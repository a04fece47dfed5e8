package bench

import (
	"encoding/binary"
	"maps"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// seqView is the view of the sequence state: a sequence number and two
// gauges, the size of a typical "load" view.
type seqView struct {
	Seq  uint64
	CPU  int64
	Conn int64
}

// seqState is a delta state whose view is a seqView and whose delta is the
// new view (three varints). When rec is set, every update it applies or
// decodes on a receiving node is reported to rec with the time: the
// instant the engine makes it visible, without polling. The definition is
// registered once per node so each node has its own recorder.
type seqState struct {
	name string
	rec  *recorder
	// room, when set, is told what observer obs applied (the throughput
	// writer's window).
	room *room
	obs  int
}

var _ dstate.DeltaDistributedState[seqView, seqView, seqView, seqView] = seqState{}

func (s seqState) Name() string                                 { return s.name }
func (seqState) WireVersion() uint32                            { return 1 }
func (seqState) StorageVersion() uint32                         { return 1 }
func (seqState) ProjectView(v *seqView) seqView                 { return *v }
func (seqState) ProjectDelta(c seqView) seqView                 { return c }
func (seqState) SyncUrgency(_, _, _ seqView) dstate.SyncUrgency { return dstate.Default }
func (seqState) EncodeView(v seqView) ([]byte, error)           { return encodeSeq(v), nil }
func (seqState) EncodeDelta(d seqView) ([]byte, error)          { return encodeSeq(d), nil }

// AppendDelta is dstate.DeltaAppender: the delta encoded into the engine's
// buffer.
func (seqState) AppendDelta(dst []byte, d seqView) ([]byte, error) { return appendSeq(dst, d), nil }
func (seqState) EncodeState(v seqView) ([]byte, error)             { return encodeSeq(v), nil }
func (seqState) DecodeState(b []byte, _ uint32) (seqView, error) {
	return decodeSeq(b)
}

func (s seqState) ApplyDelta(_ seqView, d seqView) (seqView, error) {
	s.rec.saw(d.Seq)
	s.room.applied(s.obs, d.Seq)
	return d, nil
}

func (s seqState) DecodeView(b []byte, _ uint32) (seqView, error) {
	v, err := decodeSeq(b)
	if err == nil {
		s.rec.saw(v.Seq)
		s.room.applied(s.obs, v.Seq)
	}
	return v, err
}

func (s seqState) DecodeDelta(b []byte, _ uint32) (seqView, error) { return decodeSeq(b) }

func encodeSeq(v seqView) []byte { return appendSeq(make([]byte, 0, 3*binary.MaxVarintLen64), v) }

func appendSeq(b []byte, v seqView) []byte {
	b = binary.AppendUvarint(b, v.Seq)
	b = binary.AppendVarint(b, v.CPU)
	return binary.AppendVarint(b, v.Conn)
}

func decodeSeq(b []byte) (seqView, error) {
	var v seqView
	var k int
	if v.Seq, k = binary.Uvarint(b); k <= 0 {
		return v, dstate.MalformedError("seq: bad sequence number")
	}
	b = b[k:]
	if v.CPU, k = binary.Varint(b); k <= 0 {
		return v, dstate.MalformedError("seq: bad cpu")
	}
	b = b[k:]
	if v.Conn, k = binary.Varint(b); k <= 0 || k != len(b) {
		return v, dstate.MalformedError("seq: bad conn")
	}
	return v, nil
}

// sendLog holds the instant each update k (1-based) was issued, in
// nanoseconds since base on the monotonic clock. The sender writes it
// before issuing the update; receivers read it.
type sendLog struct {
	base time.Time
	at   []atomic.Int64
}

func newSendLog(n int) *sendLog { return &sendLog{base: time.Now(), at: make([]atomic.Int64, n+1)} }

// mark records that update k is being issued now.
func (l *sendLog) mark(k int) { l.at[k].Store(int64(time.Since(l.base))) }

// recorder collects, on one receiving node, the latency of every update:
// the time from its issue until this node held it or a later one (an
// update overtaken by a newer one, as memberlist's invalidating queue
// does, becomes visible with the newer one). saw is called from one
// goroutine at a time; next publishes the progress to the reader.
type recorder struct {
	log  *sendLog
	from uint64 // first update counted (updates before it are ignored)
	lat  []time.Duration
	next atomic.Uint64 // the lowest update not yet seen
}

func newRecorder(log *sendLog) *recorder {
	r := &recorder{log: log, lat: make([]time.Duration, len(log.at))}
	r.next.Store(1)
	return r
}

// saw records that updates up to seq are visible now.
func (r *recorder) saw(seq uint64) {
	if r == nil {
		return
	}
	next := r.next.Load()
	if seq < next {
		return
	}
	now := time.Duration(time.Since(r.log.base))
	last := min(seq, uint64(len(r.lat)-1))
	for k := next; k <= last; k++ {
		r.lat[k] = now - time.Duration(r.log.at[k].Load())
	}
	r.next.Store(seq + 1)
}

// reached reports whether every update up to k was seen.
func (r *recorder) reached(k int) bool { return r.next.Load() > uint64(k) }

// samples returns the latencies of updates lo..hi (inclusive); call it
// after reached(hi).
func (r *recorder) samples(lo, hi int) []time.Duration {
	_ = r.next.Load() // pairs with the Store in saw
	return append([]time.Duration(nil), r.lat[lo:hi+1]...)
}

// kvState is a key-value delta state: the state and its view are a map of
// int64 values, a delta sets one key. Views are immutable maps: ApplyDelta
// copies the map (as GaugesState does), which is what a reader-safe map
// view costs.
type kvState struct{ name string }

type kvSet struct {
	Key   string
	Value int64
}

var _ dstate.DeltaDistributedState[map[string]int64, map[string]int64, kvSet, kvSet] = kvState{}

func (s kvState) Name() string                                                { return s.name }
func (kvState) WireVersion() uint32                                           { return 1 }
func (kvState) StorageVersion() uint32                                        { return 1 }
func (kvState) ProjectView(m *map[string]int64) map[string]int64              { return maps.Clone(*m) }
func (kvState) ProjectDelta(c kvSet) kvSet                                    { return c }
func (kvState) SyncUrgency(_, _ map[string]int64, _ kvSet) dstate.SyncUrgency { return dstate.Default }
func (kvState) EncodeView(v map[string]int64) ([]byte, error)                 { return encodeKV(v), nil }
func (kvState) EncodeState(v map[string]int64) ([]byte, error)                { return encodeKV(v), nil }
func (kvState) DecodeView(b []byte, _ uint32) (map[string]int64, error)       { return decodeKV(b) }
func (kvState) DecodeState(b []byte, _ uint32) (map[string]int64, error)      { return decodeKV(b) }

func (kvState) ApplyDelta(v map[string]int64, d kvSet) (map[string]int64, error) {
	out := make(map[string]int64, len(v)+1)
	maps.Copy(out, v)
	out[d.Key] = d.Value
	return out, nil
}

func (kvState) EncodeDelta(d kvSet) ([]byte, error) {
	b := make([]byte, 0, len(d.Key)+2*binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, uint64(len(d.Key)))
	b = append(b, d.Key...)
	return binary.AppendVarint(b, d.Value), nil
}

func (kvState) DecodeDelta(b []byte, _ uint32) (kvSet, error) {
	var d kvSet
	l, k := binary.Uvarint(b)
	if k <= 0 || l > uint64(len(b)-k) {
		return d, dstate.MalformedError("kv: bad key length")
	}
	d.Key = string(b[k : k+int(l)])
	b = b[k+int(l):]
	v, k := binary.Varint(b)
	if k <= 0 || k != len(b) {
		return d, dstate.MalformedError("kv: bad value")
	}
	d.Value = v
	return d, nil
}

func encodeKV(m map[string]int64) []byte {
	size := binary.MaxVarintLen64
	for k := range m {
		size += len(k) + 1 + binary.MaxVarintLen64
	}
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(len(m)))
	for k, v := range m {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendVarint(b, v)
	}
	return b
}

// decodeKV decodes a view. The keys are substrings of one copy of the
// encoding (one allocation instead of one per key, which halves the cost
// of a large snapshot's decoding); a view keeps that copy alive until its
// last decoded key is gone, at most the snapshot's size.
func decodeKV(b []byte) (map[string]int64, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, dstate.MalformedError("kv: bad count")
	}
	m := make(map[string]int64, n)
	if err := decodeKVInto(m, b); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeKVInto decodes a snapshot's entries into m.
func decodeKVInto(m map[string]int64, b []byte) error {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return dstate.MalformedError("kv: bad count")
	}
	b = b[k:]
	arena := string(b)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return dstate.MalformedError("kv: bad key length")
		}
		off := len(arena) - len(b) + k
		key := arena[off : off+int(l)]
		b = b[k+int(l):]
		v, k2 := binary.Varint(b)
		if k2 <= 0 {
			return dstate.MalformedError("kv: bad value")
		}
		b = b[k2:]
		m[key] = v
	}
	if len(b) != 0 {
		return dstate.MalformedError("kv: trailing bytes")
	}
	return nil
}

var _ dstate.ChunkedViewCodec[map[string]int64] = kvState{}

// EncodeViewChunks implements dstate.ChunkedViewCodec: runs of entries in
// the snapshot's format (a count, then the entries), cut once a chunk
// holds chunkSize bytes. Views are never changed once published, so the
// walk may be suspended between chunks.
//
// A view larger than a chunk starts with a header chunk, a count of 0
// followed by the view's entry count, so that the decoder sizes its map
// once (growing a map of a million keys costs more than decoding them).
func (kvState) EncodeViewChunks(v map[string]int64, chunkSize int, emit func([]byte) error) error {
	size := 0
	for k := range v {
		size += len(k) + 2
	}
	if size > chunkSize {
		h := binary.AppendUvarint(make([]byte, 0, 1+binary.MaxVarintLen64), 0)
		if err := emit(binary.AppendUvarint(h, uint64(len(v)))); err != nil {
			return err
		}
	}
	// A chunk is built in place after room for its count, which is written
	// in front of the entries once known: the chunk is the only copy.
	const room = binary.MaxVarintLen64
	var body []byte // allocated at the chunk's first entry
	n := 0
	flush := func() error {
		var cnt [binary.MaxVarintLen64]byte
		w := binary.PutUvarint(cnt[:], uint64(n))
		c := body[room-w:]
		copy(c, cnt[:w])
		body, n = nil, 0
		return emit(c)
	}
	sent := false
	for k, x := range v {
		if body == nil {
			body = make([]byte, room, room+chunkSize+64)
		}
		body = binary.AppendUvarint(body, uint64(len(k)))
		body = append(body, k...)
		body = binary.AppendVarint(body, x)
		n++
		if len(body) >= chunkSize {
			if err := flush(); err != nil {
				return err
			}
			sent = true
		}
	}
	if n > 0 || !sent {
		if body == nil {
			body = make([]byte, room)
		}
		return flush()
	}
	return nil
}

// NewViewDecoder implements dstate.ChunkedViewCodec.
func (kvState) NewViewDecoder(uint32) (dstate.ViewDecoder[map[string]int64], error) {
	return &kvDecoder{}, nil
}

// kvDecoder adds each chunk's entries to one map; the keys of a chunk are
// substrings of one copy of it (as decodeKV does).
type kvDecoder struct{ m map[string]int64 }

// maxKVHint bounds the map a stream's header makes the decoder allocate.
const maxKVHint = 1 << 21

func (d *kvDecoder) Add(chunk []byte) error {
	if d.m == nil {
		if n, k := binary.Uvarint(chunk); k > 0 && n == 0 && len(chunk) > k {
			h, k2 := binary.Uvarint(chunk[k:])
			if k2 <= 0 || k+k2 != len(chunk) {
				return dstate.MalformedError("kv: bad stream header")
			}
			d.m = make(map[string]int64, min(h, maxKVHint))
			return nil
		}
		d.m = map[string]int64{}
	}
	return decodeKVInto(d.m, chunk)
}

func (d *kvDecoder) Finish() (map[string]int64, error) {
	if d.m == nil {
		return nil, dstate.MalformedError("kv: empty stream")
	}
	return d.m, nil
}

// countState is a simple state (its value is its view): one int64.
type countState struct{ name string }

var _ dstate.DistributedState[int64] = countState{}

func (s countState) Name() string         { return s.name }
func (countState) WireVersion() uint32    { return 1 }
func (countState) StorageVersion() uint32 { return 1 }
func (countState) EncodeState(v int64) ([]byte, error) {
	return binary.AppendVarint(make([]byte, 0, binary.MaxVarintLen64), v), nil
}
func (countState) DecodeState(b []byte, _ uint32) (int64, error) {
	v, k := binary.Varint(b)
	if k <= 0 || k != len(b) {
		return 0, dstate.MalformedError("count: bad value")
	}
	return v, nil
}
