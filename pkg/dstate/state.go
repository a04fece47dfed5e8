package dstate

// A state definition is a stateless value whose methods describe one state
// type. The engine and the host call its methods from the one goroutine
// that owns the state; they must not block, must be deterministic and must
// not keep or mutate their arguments unless stated.
//
// Every definition is a [StateCodec]: a name, versions and the encoding of
// the owned value. A [DistributedState] is nothing more; a
// [DeltaDistributedState] adds a projected view and its deltas. Optional
// capabilities are detected with type assertions: [UrgencyDecider] (how
// urgently one delta change travels) and [StateMigrator] (reading an older
// storage version). [Versions] implements WireVersion and StorageVersion
// for definitions that embed it.

// StateCodec is the codec contract every state definition fulfils: the
// state's name, its versions and the encoding of its owned value. It is
// all that persistence needs of a definition ([PersistenceFor],
// [DecodeStored]), and both [DistributedState] and [DeltaDistributedState]
// embed it. A definition is a stateless value; the engine and the host call
// its methods from the goroutine that owns the state: they must not block,
// must be deterministic and must not keep or mutate their arguments.
type StateCodec[S any] interface {
	// Name is the state's cluster-wide unique name (registry key, wire
	// state name and persistence key).
	Name() string
	// WireVersion is the version of the encoding this node sends.
	WireVersion() uint32
	// StorageVersion is the version of the encoding this node persists.
	StorageVersion() uint32
	// EncodeState encodes the owned value for persistence (and, for a
	// DistributedState, for the wire).
	EncodeState(S) ([]byte, error)
	// DecodeState decodes a value encoded in the given version: a storage
	// version (and, for a DistributedState, a wire version). An unreadable
	// version is ErrUnknownVersion; bad bytes are ErrMalformed.
	DecodeState(data []byte, version uint32) (S, error)
}

// DistributedState describes a simple state type whose whole value is its
// replicated view: EncodeState and DecodeState are its wire encoding too.
// With [Versions] embedded, a definition writes three methods: Name,
// EncodeState and DecodeState.
type DistributedState[S any] interface {
	StateCodec[S]
}

// DeltaDistributedState describes a state whose private value S is projected
// into a public view V that replicates by deltas D. A mutation returns an
// application-level change C from which the delta is projected.
//
// SyncUrgency is optional (see [UrgencyDecider]); without it every change
// travels as the state's SyncStrategy says (urgency [Default]).
type DeltaDistributedState[S, V, D, C any] interface {
	StateCodec[S]
	// ProjectView computes the public view of a state.
	ProjectView(state *S) V
	// ProjectDelta computes the view delta of one change.
	ProjectDelta(change C) D
	// ApplyDelta returns the view with the delta applied. It may reuse the
	// storage of view only if views are not shared (the engine publishes the
	// returned value and never touches the old one again).
	ApplyDelta(view V, delta D) (V, error)
	// EncodeView encodes a view for a FullSnapshot.
	EncodeView(V) ([]byte, error)
	// DecodeView decodes a FullSnapshot's view in the given wire version.
	DecodeView(data []byte, wireVersion uint32) (V, error)
	// EncodeDelta encodes a delta for a DeltaUpdate.
	EncodeDelta(D) ([]byte, error)
	// DecodeDelta decodes a DeltaUpdate's delta in the given wire version.
	DecodeDelta(data []byte, wireVersion uint32) (D, error)
}

// UrgencyDecider is an optional capability of a [DeltaDistributedState]:
// it decides how urgently one change must travel. The engine detects it
// with a type assertion when the engine is built; a definition without it
// gets [Default] for every change (the push mode of the state's
// SyncStrategy).
type UrgencyDecider[V, C any] interface {
	// SyncUrgency says how urgently one change must travel, given the view
	// before and after it. The engine calls it once per delta mutation,
	// after ProjectView and ProjectDelta.
	SyncUrgency(old, new V, change C) SyncUrgency
}

// StateMigrator is an optional capability of a state definition: it reads a
// persisted state written in an older storage version. The host detects it
// with a type assertion when a loaded state's version differs.
type StateMigrator[S any] interface {
	// MigrateState decodes a state persisted in the older storage version
	// fromVersion. An unreadable version is ErrUnknownVersion; bad bytes
	// are ErrMalformed.
	MigrateState(data []byte, fromVersion uint32) (S, error)
}

// Versions implements WireVersion and StorageVersion for a definition that
// embeds it:
//
//	type CounterState struct{ dstate.Versions }
//	def := CounterState{dstate.Versions{Wire: 1}} // stores in version 1 too
//
// A zero Storage means the storage version is the wire version; a
// definition that stores in version 0 while it sends another version
// writes its own StorageVersion method.
type Versions struct {
	Wire    uint32 // the wire version
	Storage uint32 // the storage version; 0 means Wire
}

// WireVersion returns v.Wire.
func (v Versions) WireVersion() uint32 { return v.Wire }

// StorageVersion returns v.Storage, or v.Wire when Storage is 0.
func (v Versions) StorageVersion() uint32 {
	if v.Storage == 0 {
		return v.Wire
	}
	return v.Storage
}

// DecodeStored decodes a persisted state written in storageVersion: with
// def's DecodeState when it is the definition's current storage version,
// else with def's MigrateState when it implements [StateMigrator]. Backends
// that store bytes use it in Load. A panic in either is returned as a
// *CallbackPanicError.
func DecodeStored[S any](def StateCodec[S], data []byte, storageVersion uint32) (v S, err error) {
	callback := CallbackDecodeState
	defer func() {
		// A panicking decoder or migration is an error of the load, never a
		// crash of the host.
		if r := recover(); r != nil {
			var zero S
			v, err = zero, RecoveredPanic(callback, def.Name(), r)
		}
	}()
	if storageVersion == def.StorageVersion() {
		return def.DecodeState(data, storageVersion)
	}
	if m, ok := def.(StateMigrator[S]); ok {
		callback = CallbackMigrateState
		return m.MigrateState(data, storageVersion)
	}
	var zero S
	return zero, UnknownVersionError(storageVersion)
}

// ChunkedViewCodec is an optional capability of a state definition, detected
// with a type assertion when the engine is built: its views encode as a
// stream of chunks, so that a view of any size replicates to a joining node
// with memory bounded by a few chunks at both ends (see
// [KindSnapshotChunk]). Definitions without it send every snapshot whole.
type ChunkedViewCodec[V any] interface {
	// EncodeViewChunks encodes v as chunks of about chunkSize bytes each
	// and calls emit with each, in order; it emits at least one chunk.
	// Each chunk holds whole entries and is itself a snapshot that
	// DecodeView reads as the view of those entries (so a view of one
	// chunk travels as a plain FullSnapshot). emit takes the chunk: the
	// codec must not modify it afterwards. When emit returns an error,
	// EncodeViewChunks stops and returns that error. v is a published view,
	// which the engine never changes; the encoding may be suspended between
	// chunks while the owner goes on mutating its value.
	EncodeViewChunks(v V, chunkSize int, emit func(chunk []byte) error) error
	// NewViewDecoder returns a decoder of one stream of chunks in the given
	// wire version (ErrUnknownVersion when it cannot read it).
	NewViewDecoder(wireVersion uint32) (ViewDecoder[V], error)
}

// ViewDecoder decodes one stream of view chunks (see [ChunkedViewCodec]).
type ViewDecoder[V any] interface {
	// Add decodes the next chunk. It must not keep chunk (the engine reuses
	// it): it copies what it keeps. Bad bytes are ErrMalformed.
	Add(chunk []byte) error
	// Finish returns the view of every chunk added; it is called once,
	// after the last chunk.
	Finish() (V, error)
}
