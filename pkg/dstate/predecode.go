package dstate

// Decoding snapshots off the engine's goroutine: a host that receives
// several large snapshots at once (a node joining a cluster) decodes each on
// the goroutine that read it, so that they decode in parallel, and hands the
// engine the decoded view. The engine checks and installs it as any
// snapshot, on its own goroutine.

// DecodedView is a FullSnapshot's view decoded before the engine handles
// the message (see [Engine.DecodeSnapshotView]).
type DecodedView[V any] struct {
	Value V
	Err   error
}

// DecodeSnapshotView decodes the view of m, a FullSnapshot of this state,
// as HandleWire would (a panic of the decoder is returned as a
// *CallbackPanicError). Unlike the engine's other methods it may be called
// from any goroutine, at the same time as the engine's own: it reads only
// the codec, whose DecodeView must then be safe for concurrent use (a
// stateless definition is). Pass the result to HandleDecodedSnapshot.
func (e *Engine[S, V]) DecodeSnapshotView(m *WireMessage) DecodedView[V] {
	v, err := e.decodeView(m.Data, m.WireVersion)
	return DecodedView[V]{Value: v, Err: err}
}

// HandleDecodedSnapshot is HandleWire for a FullSnapshot whose view
// DecodeSnapshotView decoded: m's Data is not read again (it may be
// released). It returns the actions HandleWire would.
func (e *Engine[S, V]) HandleDecodedSnapshot(m *WireMessage, d DecodedView[V]) []Action {
	if m.Kind != KindFullSnapshot {
		return e.HandleWire(m)
	}
	e.pre, e.hasPre = d, true
	acts := e.HandleWire(m)
	e.pre, e.hasPre = DecodedView[V]{}, false
	return acts
}

// snapshotView is the view of the snapshot being handled: decoded ahead
// (HandleDecodedSnapshot), or decoded now.
func (e *Engine[S, V]) snapshotView(m *WireMessage) (V, error) {
	if e.hasPre {
		return e.pre.Value, e.pre.Err
	}
	return e.decodeView(m.Data, m.WireVersion)
}
