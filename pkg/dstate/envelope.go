package dstate

import "time"

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
type StateViewObject[V any] struct {
	// Generation of the owner's state this view reflects. Zero for a peer
	// that joined but whose state has not arrived yet.
	Generation Generation
	// WireVersion the view was decoded from (the engine's own wire version
	// for the local view).
	WireVersion uint32
	// Value is the view.
	Value V
	// CreatedUnixMs and ModifiedUnixMs are the owner's timestamps when the
	// wire carried them, else the receiver's clock (see the package doc).
	CreatedUnixMs  int64
	ModifiedUnixMs int64
	// SyncedAt is the receiver's monotonic time of the last accepted update;
	// freshness is measured from it.
	SyncedAt time.Time
	// Pending, when non-zero, is a newer generation announced by a change
	// notice and not yet received: the view is stale until it arrives. The
	// placeholder v0:1 marks a view stale until its owner says where it
	// stands, whatever generation the view holds: a peer that has just
	// joined, or one back after membership reported it failed; any
	// snapshot, delta or digest entry from the owner clears it.
	Pending Generation
	// Source is the node that owns this view.
	Source NodeID
}

// HasPending reports whether a newer generation is known to exist.
func (v *StateViewObject[V]) HasPending() bool { return !v.Pending.IsZero() }
