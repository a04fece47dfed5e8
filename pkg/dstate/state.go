package dstate

// DistributedState describes a simple state type whose whole value is its
// replicated view. A value of the implementing type is a stateless
// definition: the engine and host call its methods from the one goroutine
// that owns the state; they must not block and must be deterministic.
type DistributedState[S any] interface {
	// Name is the state's cluster-wide unique name (registry key and wire
	// state name).
	Name() string
	// WireVersion is the version of the encoding this node sends.
	WireVersion() uint32
	// StorageVersion is the version of the encoding this node persists.
	StorageVersion() uint32
	// EncodeState encodes the state for the wire and for persistence.
	EncodeState(S) ([]byte, error)
	// DecodeState decodes a state sent or stored in the given version. An
	// unreadable version is ErrUnknownVersion; bad bytes are ErrMalformed.
	DecodeState(data []byte, version uint32) (S, error)
}

// DeltaDistributedState describes a state whose private value S is projected
// into a public view V that replicates by deltas D. A mutation returns an
// application-level change C from which the delta is projected.
//
// The methods are called by the goroutine that owns the state (the engine's
// actor); they must not block, must be deterministic and must not keep or
// mutate their arguments unless stated.
type DeltaDistributedState[S, V, D, C any] interface {
	Name() string
	WireVersion() uint32
	StorageVersion() uint32
	// ProjectView computes the public view of a state.
	ProjectView(state *S) V
	// ProjectDelta computes the view delta of one change.
	ProjectDelta(change C) D
	// ApplyDelta returns the view with the delta applied. It may reuse the
	// storage of view only if views are not shared (the engine publishes the
	// returned value and never touches the old one again).
	ApplyDelta(view V, delta D) (V, error)
	// SyncUrgency decides how urgently one change must travel.
	SyncUrgency(old, new V, change C) SyncUrgency
	EncodeView(V) ([]byte, error)
	DecodeView(data []byte, wireVersion uint32) (V, error)
	EncodeDelta(D) ([]byte, error)
	DecodeDelta(data []byte, wireVersion uint32) (D, error)
	EncodeState(S) ([]byte, error)
	DecodeState(data []byte, storageVersion uint32) (S, error)
}

// StateMigrator is an optional capability of a state definition: it reads a
// persisted state written in an older storage version. The host detects it
// with a type assertion when a loaded state's version differs.
type StateMigrator[S any] interface {
	MigrateState(data []byte, fromVersion uint32) (S, error)
}
