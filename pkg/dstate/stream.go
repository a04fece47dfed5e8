package dstate

import (
	"errors"
	"fmt"
	"iter"
	"time"
)

// Streamed snapshots. A state whose definition is a [ChunkedViewCodec]
// sends a view larger than one chunk as a stream of KindSnapshotChunk
// messages instead of one FullSnapshot, so that neither end ever holds more
// than a few chunks of it beyond the views themselves:
//
//   - The owner encodes lazily: it keeps the published view (immutable)
//     and a suspended encoder over it, and encodes a chunk only when the
//     receiver's pulls open the window (at most window chunks in flight,
//     plus the one encoded ahead to know which chunk is the last). It keeps
//     no encoding of the whole view.
//   - The receiver feeds each chunk to a [ViewDecoder] and drops it; its
//     view stays at its last generation, readable, until the last chunk
//     swaps the whole new view in as a snapshot would. Each chunk but the
//     last is answered by a KindSnapshotPull naming the next chunk wanted.
//   - A stream of a newer generation (or a restart at chunk 0) replaces a
//     partial one; a chunk out of order, a stream over MaxSnapshot, a
//     chunk that does not decode, or a stream idle for the pull timeout is
//     discarded (and a snapshot asked for again, at most once per pull
//     timeout, unless the stream was over the limit). Deltas past the
//     streamed generation that arrive meanwhile are kept (bounded) and
//     applied once the stream is complete.
//
// Compatibility: a node sends chunks or pulls to a peer only once that peer
// sent it one (it then runs a release with streams), except for the
// unsolicited snapshot to a joining or restarted peer, which is streamed
// when larger than a chunk: a node of a release without streams drops it
// as malformed and pulls the state with a RequestSnapshot, which a peer
// not known to stream is answered with a whole FullSnapshot. A view that
// fits in one chunk always travels as a FullSnapshot, and so does one known
// to fit in a few (see sendWhole).

// Defaults of snapshot streaming (see [Engine.SetSnapshotChunking]).
const (
	// DefaultChunkBytes is the size a snapshot chunk is cut at.
	DefaultChunkBytes = 1 << 20
	// DefaultChunkWindow is the number of chunks an owner keeps in flight
	// to one receiver.
	DefaultChunkWindow = 2
	// maxStreamDeltas bounds the deltas a receiver keeps while a stream is
	// in progress; past it (or past a window's bytes) it keeps none and
	// asks for a snapshot once the stream is complete.
	maxStreamDeltas = 1024
)

// errStreamStopped is what emit returns once the stream is abandoned.
var errStreamStopped = errors.New("dstate: snapshot stream stopped")

type streams[V any] struct {
	chunkBytes int
	window     uint64
	capable    map[NodeID]struct{} // peers that sent a chunk or a pull: they stream
	lastID     uint64              // the ID of the last stream started
	in         map[NodeID]*inStream[V]
	out        map[NodeID]*outStream
}

// inStream is a stream being received from its owner.
type inStream[V any] struct {
	hdr        WireMessage // the stream's header as a FullSnapshot without data
	id         uint64
	dec        ViewDecoder[V]
	next       uint64 // index of the chunk expected next
	bytes      uint64 // bytes received
	lastAt     time.Time
	deltas     []WireMessage // deltas past hdr.Generation, with their own Data
	deltaBytes int
	overflow   bool // deltas were dropped: ask for a snapshot after the stream
	// refused marks a stream discarded for being over MaxSnapshot: the rest
	// of its chunks is dropped without asking again (the owner is told to
	// stop it).
	refused bool
}

// outStream is a stream being sent to one receiver.
type outStream struct {
	id             uint64
	gen            Generation
	created, modMs int64
	pull           func() ([]byte, error, bool)
	stop           func()
	ahead          []byte // the next chunk, encoded ahead to know the last one
	aheadOK        bool
	sent, acked    uint64 // chunks sent; chunks the receiver holds (its last pull)
	offset         uint64 // bytes sent
	lastAt         time.Time
}

// SetSnapshotChunking sets the size snapshot chunks are cut at and the
// number of chunks kept in flight to one receiver, for a state whose
// definition is a [ChunkedViewCodec] (zero or negative values take
// [DefaultChunkBytes] and [DefaultChunkWindow]). A view whose encoding fits
// in one chunk travels as a FullSnapshot, as does one known to fit in 8
// (its size is known once it was encoded or streamed whole). Streams in
// progress keep their settings.
func (e *Engine[S, V]) SetSnapshotChunking(chunkBytes, window int) {
	st := e.streams()
	st.chunkBytes, st.window = DefaultChunkBytes, DefaultChunkWindow
	if chunkBytes > 0 {
		st.chunkBytes = chunkBytes
	}
	if window > 0 {
		st.window = uint64(window)
	}
}

// Chunked reports whether the state's snapshots larger than a chunk are
// streamed (its definition is a [ChunkedViewCodec]).
func (e *Engine[S, V]) Chunked() bool {
	return e.codec.EncodeViewChunks != nil && e.codec.NewViewDecoder != nil
}

func (e *Engine[S, V]) streams() *streams[V] {
	if e.st == nil {
		e.st = &streams[V]{chunkBytes: DefaultChunkBytes, window: DefaultChunkWindow,
			capable: make(map[NodeID]struct{}), in: make(map[NodeID]*inStream[V]), out: make(map[NodeID]*outStream)}
	}
	return e.st
}

// streaming reports whether a stream from node is in progress.
func (e *Engine[S, V]) streaming(node NodeID) bool {
	if e.st == nil {
		return false
	}
	in := e.st.in[node]
	return in != nil && !in.refused
}

// streamsFrom reports whether node is known to stream this state (it sent
// a chunk or a pull).
func (e *Engine[S, V]) streamsFrom(node NodeID) bool {
	if e.st == nil || !e.Chunked() {
		return false
	}
	_, ok := e.st.capable[node]
	return ok
}

// StopStreams abandons every snapshot stream in progress, sent or
// received, and releases their encoders. Hosts call it when they stop the
// engine: the encoder of a stream being sent is a suspended goroutine
// (iter.Pull) that holds the streamed view until the stream ends or
// expires.
func (e *Engine[S, V]) StopStreams() {
	if e.st == nil {
		return
	}
	for node := range e.st.out {
		e.stopOut(node)
	}
	clear(e.st.in)
}

// dropStreams abandons the streams to and from node; forget also forgets
// that node streams.
func (e *Engine[S, V]) dropStreams(node NodeID, forget bool) {
	if e.st == nil {
		return
	}
	e.stopOut(node)
	delete(e.st.in, node)
	if forget {
		delete(e.st.capable, node)
	}
}

func (e *Engine[S, V]) stopOut(node NodeID) {
	if o := e.st.out[node]; o != nil {
		o.stop()
		delete(e.st.out, node)
	}
}

// expireStreams discards the streams idle for the pull timeout: a received
// one is asked for again, a sent one is abandoned (its receiver went away
// or restarted).
func (e *Engine[S, V]) expireStreams() {
	if len(e.st.in) == 0 && len(e.st.out) == 0 {
		return
	}
	now := e.now()
	for node, o := range e.st.out {
		if now.Sub(o.lastAt) >= e.pullPeriod {
			o.stop()
			delete(e.st.out, node)
		}
	}
	for node, in := range e.st.in {
		if now.Sub(in.lastAt) >= e.pullPeriod {
			delete(e.st.in, node)
			if in.refused {
				continue
			}
			e.m.syncFailures.Add(1)
			e.failure(node, fmt.Sprintf("snapshot stream of %s stalled after %d chunks", in.hdr.Generation, in.next))
			e.requestSnapshot(node, now)
		}
	}
}

// sendOwn sends the own snapshot to node: streamed when the state streams,
// its view is not known to be small (see sendWhole) and the node is known
// to stream (or the send is unsolicited: see the compatibility note above),
// whole otherwise.
func (e *Engine[S, V]) sendOwn(node NodeID, solicited bool) {
	if e.Chunked() && (!solicited || e.streamsFrom(node)) && !e.sendWhole() {
		if e.startStream(node) {
			return
		}
	}
	if msg, ok := e.ownSnapshot(); ok {
		e.acts = append(e.acts, Action{Kind: ActionSend, Target: node, Message: msg})
	}
}

// wholeChunks is how many chunks a view may be known to encode within and
// still travel as one FullSnapshot: one message, decoded at once, and an
// encoding the owner keeps for the next peer, which costs less time than a
// stream and little memory at that size. Views larger, or of unknown size
// (a stream measures them), stream.
const wholeChunks = 8

// sendWhole reports whether the own view is known to encode within
// wholeChunks chunks: its encoding is cached, or the size guard's bound
// (noted by the last encoding or completed stream) says so.
func (e *Engine[S, V]) sendWhole() bool {
	own := e.own()
	if own == nil {
		return true
	}
	limit := e.streams().chunkBytes * wholeChunks
	if e.ownEncOK && e.ownEncGen == own.Generation {
		return len(e.ownEnc) <= limit
	}
	return e.size.known && e.size.gen == own.Generation && e.size.bound <= limit
}

// chunks returns the chunks of v as a sequence (EncodeViewChunks turned
// inside out).
func (e *Engine[S, V]) chunks(v V, size int) iter.Seq2[[]byte, error] {
	enc := e.codec.EncodeViewChunks
	return func(yield func([]byte, error) bool) {
		stopped := false
		err := enc(v, size, func(c []byte) error {
			if stopped || !yield(c, nil) {
				stopped = true
				return errStreamStopped
			}
			return nil
		})
		if err != nil && !stopped {
			yield(nil, err)
		}
	}
}

// nextChunk pulls the next chunk of o's encoder; a panic of the encoder is
// returned as a *CallbackPanicError.
func (e *Engine[S, V]) nextChunk(pull func() ([]byte, error, bool)) (c []byte, ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, ok, err = nil, false, RecoveredPanic(CallbackEncodeView, e.name, r)
		}
	}()
	c, err, ok = pull()
	return c, ok, err
}

// startStream starts streaming the published own view to node, replacing a
// stream to it in progress. A view of one chunk goes as a FullSnapshot. It
// reports whether it sent anything (not when the encoder failed).
func (e *Engine[S, V]) startStream(node NodeID) bool {
	own := e.own()
	if own == nil {
		return false
	}
	st := e.streams()
	e.stopOut(node)
	pull, stop := iter.Pull2(e.chunks(own.Value, st.chunkBytes))
	c0, ok0, err := e.nextChunk(pull)
	var c1 []byte
	ok1 := false
	if err == nil && ok0 {
		c1, ok1, err = e.nextChunk(pull)
	}
	if err != nil || !ok0 {
		stop()
		e.m.encodeFailures.Add(1)
		return false
	}
	e.m.snapshotsSent.Add(1)
	if !ok1 {
		// One chunk: it is the whole snapshot.
		stop()
		e.ownEnc, e.ownEncGen, e.ownEncOK = c0, own.Generation, true
		if own.Generation == e.obj.Generation {
			e.size.note(own.Generation, len(c0))
		}
		e.acts = append(e.acts, Action{Kind: ActionSend, Target: node, Message: WireMessage{
			Kind: KindFullSnapshot, State: e.name, Source: e.self, Generation: own.Generation, WireVersion: e.wireVer,
			CreatedUnixMs: e.obj.CreatedUnixMs, ModifiedUnixMs: own.ModifiedUnixMs, SentUnixMs: e.clock.UnixMilli(), Data: c0,
		}})
		return true
	}
	st.lastID++
	o := &outStream{id: st.lastID, gen: own.Generation, created: e.obj.CreatedUnixMs, modMs: own.ModifiedUnixMs,
		pull: pull, stop: stop, ahead: c0, aheadOK: true, lastAt: e.now()}
	st.out[node] = o
	e.sendChunk(node, o, c1, true)
	return true
}

// sendChunk sends o's chunk encoded ahead, keeps next (if ok) as the one
// ahead, then fills the window.
func (e *Engine[S, V]) sendChunk(node NodeID, o *outStream, next []byte, ok bool) {
	for {
		c := o.ahead
		o.ahead, o.aheadOK = next, ok
		e.acts = append(e.acts, Action{Kind: ActionSend, Target: node, Message: WireMessage{
			Kind: KindSnapshotChunk, State: e.name, Source: e.self, Generation: o.gen, WireVersion: e.wireVer,
			CreatedUnixMs: o.created, ModifiedUnixMs: o.modMs, SentUnixMs: e.clock.UnixMilli(),
			StreamID: o.id, ChunkIndex: o.sent, ChunkOffset: o.offset, ChunkLast: !ok, Data: c,
		}})
		o.sent++
		o.offset += uint64(len(c))
		e.m.chunksSent.Add(1)
		if !ok {
			// The last chunk is out: the stream is done.
			if o.gen == e.obj.Generation {
				e.size.note(o.gen, int(o.offset))
			}
			e.stopOut(node)
			return
		}
		if o.sent >= o.acked+e.st.window {
			return
		}
		var err error
		next, ok, err = e.nextChunk(o.pull)
		if err != nil {
			e.m.encodeFailures.Add(1)
			e.stopOut(node)
			return
		}
	}
}

// handlePull answers a KindSnapshotPull: a new stream, more chunks of one
// in progress, or its end.
func (e *Engine[S, V]) handlePull(m *WireMessage) {
	if !e.Chunked() {
		// Not a streaming state here (the definitions differ between the
		// nodes): a request for a new stream gets the whole snapshot.
		if m.Generation.IsZero() && !m.ChunkLast {
			e.sendOwn(m.Source, true)
		}
		return
	}
	st := e.streams()
	st.capable[m.Source] = struct{}{}
	if m.Generation.IsZero() {
		if !m.ChunkLast {
			e.sendOwn(m.Source, true)
		}
		return
	}
	o := st.out[m.Source]
	if o == nil || o.gen != m.Generation || o.id != m.StreamID {
		// A stream that ended, was replaced or expired: nothing to do (a
		// receiver that still needs the view asks for a new stream).
		return
	}
	if m.ChunkLast {
		e.stopOut(m.Source)
		return
	}
	o.lastAt = e.now()
	if m.ChunkIndex > o.acked {
		o.acked = min(m.ChunkIndex, o.sent)
	}
	if o.sent < o.acked+st.window && o.aheadOK {
		next, ok, err := e.nextChunk(o.pull)
		if err != nil {
			e.m.encodeFailures.Add(1)
			e.stopOut(m.Source)
			return
		}
		e.sendChunk(m.Source, o, next, ok)
	}
}

// sendPull sends owner a pull of its stream id of gen: the next chunk
// wanted, or stop.
func (e *Engine[S, V]) sendPull(owner NodeID, gen Generation, id, next uint64, stop bool) {
	e.acts = append(e.acts, Action{Kind: ActionSend, Target: owner, Message: WireMessage{
		Kind: KindSnapshotPull, State: e.name, Source: e.self, Generation: gen, StreamID: id, ChunkIndex: next, ChunkLast: stop,
		SentUnixMs: e.clock.UnixMilli(),
	}})
}

// supersedeStream drops the stream in progress from a snapshot's source
// when the snapshot is at least as new, and tells the owner to stop it.
func (e *Engine[S, V]) supersedeStream(m *WireMessage) {
	if e.st == nil {
		return
	}
	if in := e.st.in[m.Source]; in != nil && !m.Generation.Less(in.hdr.Generation) {
		delete(e.st.in, m.Source)
		if !in.refused {
			e.sendPull(m.Source, in.hdr.Generation, in.id, 0, true)
		}
	}
}

// holdDelta keeps a delta past the generation of the stream in progress
// from its source, to apply after the stream; it reports whether it took
// the delta.
func (e *Engine[S, V]) holdDelta(m *WireMessage) bool {
	if e.st == nil {
		return false
	}
	in := e.st.in[m.Source]
	if in == nil || in.refused || !in.hdr.Generation.Less(m.Generation) {
		return false
	}
	if in.overflow {
		return true
	}
	if len(in.deltas) >= maxStreamDeltas || in.deltaBytes+len(m.Data) > e.st.chunkBytes*int(e.st.window) {
		in.overflow, in.deltas, in.deltaBytes = true, nil, 0
		return true
	}
	d := *m
	d.Data = append([]byte(nil), m.Data...)
	d.Notifications = nil
	in.deltas = append(in.deltas, d)
	in.deltaBytes += len(d.Data)
	return true
}

// handleChunk takes one chunk of a stream.
func (e *Engine[S, V]) handleChunk(m *WireMessage) {
	src := m.Source
	if !e.Chunked() {
		// The definitions differ between the nodes; whole snapshots are
		// asked for with RequestSnapshot.
		e.m.syncFailures.Add(1)
		e.failure(src, "malformed: a snapshot chunk for a state whose views are not chunked here")
		return
	}
	now := e.now()
	st := e.streams()
	st.capable[src] = struct{}{}
	p := e.peer(src)
	e.attempted(src, now)
	in := st.in[src]
	switch {
	case in != nil && m.Generation.Less(in.hdr.Generation):
		e.m.staleDiscarded.Add(1) // of a stream already replaced
		return
	case in != nil && m.Generation == in.hdr.Generation && m.ChunkIndex != 0 && m.StreamID != in.id:
		e.m.staleDiscarded.Add(1) // of a stream already replaced
		return
	case in != nil && in.refused && m.Generation == in.hdr.Generation && m.ChunkIndex != 0:
		return // the rest of a stream over the limit, in flight
	case in != nil && m.Generation == in.hdr.Generation && m.ChunkIndex != 0:
		if m.ChunkIndex != in.next || m.ChunkOffset != in.bytes {
			delete(st.in, src)
			e.m.syncFailures.Add(1)
			e.failure(src, fmt.Sprintf("snapshot stream of %s: chunk %d at byte %d, want chunk %d at byte %d",
				m.Generation, m.ChunkIndex, m.ChunkOffset, in.next, in.bytes))
			// A new stream replaces this one at the owner; without pulls,
			// this one stops at its window.
			e.requestSnapshot(src, now)
			return
		}
	default:
		// A chunk that starts a stream (a newer generation replaces the
		// partial one; chunk 0 of the same generation restarts it).
		delete(st.in, src)
		cur := e.views.get(src)
		if cur != nil && !cur.Generation.IsZero() && !cur.Generation.Less(m.Generation) {
			if m.Generation == cur.Generation && m.ChunkIndex == 0 {
				h := chunkHeader(m)
				e.handleSnapshot(&h) // confirms the generation held
			} else {
				e.m.staleDiscarded.Add(1)
			}
			e.sendPull(src, m.Generation, m.StreamID, 0, true)
			return
		}
		if m.ChunkIndex != 0 || m.ChunkOffset != 0 {
			// Its start was lost, or a partial was discarded: ask for a
			// new stream (no pull answers this one, which stops at its
			// window).
			e.requestSnapshot(src, now)
			return
		}
		dec, err := e.newViewDecoder(m.WireVersion)
		if err != nil {
			e.decodeFailure(src, err)
			e.sendPull(src, m.Generation, m.StreamID, 0, true)
			return
		}
		in = &inStream[V]{hdr: chunkHeader(m), id: m.StreamID, dec: dec}
		st.in[src] = in
	}
	maxSnap, _ := e.size.limits()
	if in.bytes+uint64(len(m.Data)) > uint64(maxSnap) {
		st.in[src] = &inStream[V]{hdr: in.hdr, id: in.id, refused: true, lastAt: now}
		e.m.syncFailures.Add(1)
		e.failure(src, fmt.Sprintf("snapshot stream of %s passes the %s snapshot limit (%d bytes) at chunk %d",
			m.Generation, formatBytes(maxSnap), in.bytes+uint64(len(m.Data)), m.ChunkIndex))
		e.sendPull(src, m.Generation, m.StreamID, 0, true)
		return
	}
	if err := e.addChunk(in.dec, m.Data); err != nil {
		delete(st.in, src)
		e.decodeFailure(src, fmt.Errorf("snapshot chunk %d of %s: %w", m.ChunkIndex, m.Generation, err))
		if errors.Is(err, ErrUnknownVersion) {
			e.sendPull(src, m.Generation, m.StreamID, 0, true)
		} else {
			e.requestSnapshot(src, now) // at most once per pull timeout; a new stream replaces this one
		}
		return
	}
	in.next++
	in.bytes += uint64(len(m.Data))
	e.m.chunksReceived.Add(1)
	in.lastAt = now
	if !m.ChunkLast {
		e.sendPull(src, m.Generation, in.id, in.next, false)
		return
	}
	delete(st.in, src)
	val, err := e.finishStream(in.dec)
	if err != nil {
		e.decodeFailure(src, fmt.Errorf("snapshot stream of %s: %w", m.Generation, err))
		if !errors.Is(err, ErrUnknownVersion) {
			e.requestSnapshot(src, now)
		}
		return
	}
	h := in.hdr
	h.SentUnixMs = m.SentUnixMs
	p = e.peer(src)
	cur := e.views.get(src)
	if cur != nil && !cur.Generation.IsZero() && !cur.Generation.Less(h.Generation) {
		e.m.staleDiscarded.Add(1) // a snapshot or deltas got there first
	} else {
		e.installSnapshot(p, &h, cur, val, now, e.askedPending(src, p))
	}
	for i := range in.deltas {
		e.handleDelta(&in.deltas[i], now)
	}
	if in.overflow {
		e.requestSnapshot(src, now)
	}
}

// chunkHeader is a chunk's header as a FullSnapshot without data.
func chunkHeader(m *WireMessage) WireMessage {
	return WireMessage{Kind: KindFullSnapshot, State: m.State, Source: m.Source, Generation: m.Generation, WireVersion: m.WireVersion,
		CreatedUnixMs: m.CreatedUnixMs, ModifiedUnixMs: m.ModifiedUnixMs, SentUnixMs: m.SentUnixMs}
}

// The guarded calls of a stream's decoder: a panic becomes a
// *CallbackPanicError.

func (e *Engine[S, V]) newViewDecoder(version uint32) (d ViewDecoder[V], err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = nil, RecoveredPanic(CallbackDecodeView, e.name, r)
		}
	}()
	d, err = e.codec.NewViewDecoder(version)
	if err == nil && d == nil {
		err = MalformedError("state %q: NewViewDecoder returned no decoder", e.name)
	}
	return d, err
}

func (e *Engine[S, V]) addChunk(d ViewDecoder[V], chunk []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = RecoveredPanic(CallbackDecodeView, e.name, r)
		}
	}()
	return d.Add(chunk)
}

func (e *Engine[S, V]) finishStream(d ViewDecoder[V]) (v V, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, err = zero, RecoveredPanic(CallbackDecodeView, e.name, r)
		}
	}()
	return d.Finish()
}
