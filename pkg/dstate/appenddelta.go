package dstate

// DeltaAppender is an optional capability of a [DeltaDistributedState]:
// it appends a delta's encoding to dst, as EncodeDelta would return it,
// and returns the extended slice. The engine detects it with a type
// assertion when the engine is built and then encodes each delta into one
// buffer it reuses, so a delta mutation allocates nothing for its
// encoding. The bytes must be exactly EncodeDelta's (peers decode them
// with DecodeDelta); an error or a panic is treated as EncodeDelta's.
//
// The encoding then lives in the engine's buffer: the messages of the
// Actions a mutation returns are valid until the engine's next call (as
// the Actions slice itself is), and [Engine.PreparedDelta] returns a copy.
type DeltaAppender[D any] interface {
	// AppendDelta appends the encoding of d to dst.
	AppendDelta(dst []byte, d D) ([]byte, error)
}

// maxDeltaScratch is the largest delta buffer an engine keeps between
// mutations; a larger one is left to the collector.
const maxDeltaScratch = 64 << 10

// encodeDelta encodes d through the definition's AppendDelta into the
// engine's reused buffer when it has one, else through EncodeDelta. It
// reports whether the result lives in that buffer.
func (e *DeltaEngine[S, V, D, C]) encodeDelta(d D) ([]byte, bool, error) {
	if e.appender == nil {
		b, err := e.def.EncodeDelta(d)
		return b, false, err
	}
	b, err := e.appender.AppendDelta(e.deltaBuf[:0], d)
	if err != nil {
		return nil, false, err
	}
	if cap(b) <= maxDeltaScratch {
		e.deltaBuf = b[:0]
	} else {
		e.deltaBuf = nil
	}
	return b, true, nil
}
