package dstate

// StateObject is a node's authoritative copy of one of its states: the value
// and the envelope persisted with it.
type StateObject[S any] struct {
	Generation     Generation
	StorageVersion uint32
	Value          S
	CreatedUnixMs  int64 // wall clock when this incarnation's state was created
	ModifiedUnixMs int64 // wall clock of the last mutation
}

// StateViewObject is one node's view of a state as seen on this node: the
// node's own view, or the last view received from a peer.
//
// A StateViewObject handed out by an engine is immutable: the engine
// publishes a new object on each change, so readers may keep it.
//
// One is held per node, state and peer, so it carries only what a reader
// cannot have elsewhere: the node it belongs to is the key it was found
// under ([Views.Get], [Views.All]), the time it was last synced is read
// with [Views.SyncedAt], and the owner's creation time is not kept (see
// ModifiedUnixMs).
type StateViewObject[V any] struct {
	// Generation of the owner's state this view reflects. Zero for a peer
	// that joined but whose state has not arrived yet.
	Generation Generation
	// WireVersion the view was decoded from (the engine's own wire version
	// for the local view).
	WireVersion uint32
	// Value is the view.
	Value V
	// ModifiedUnixMs is the owner's time of its last mutation when the
	// wire carried it, else the receiver's clock (see the package doc).
	// The owner's creation time, which the wire carries too, is not kept
	// in the view: its incarnation (Generation.Incarnation) is the
	// wall-clock millisecond it started at.
	ModifiedUnixMs int64
	// syncedNs is the receiver's monotonic time of the last accepted
	// update, in nanoseconds since the epoch of the engine's views (see
	// Views.SyncedAt); freshness is measured from it.
	syncedNs int64
	// Pending, when non-zero, is a newer generation announced by a change
	// notice and not yet received: the view is stale until it arrives. The
	// placeholder v0:1 marks a view stale until its owner says where it
	// stands, whatever generation the view holds: a peer that has just
	// joined, or one back after membership reported it failed; any
	// snapshot, delta or digest entry from the owner clears it.
	Pending Generation
}

// HasPending reports whether a newer generation is known to exist.
func (v *StateViewObject[V]) HasPending() bool { return !v.Pending.IsZero() }
