package dstate

import "context"

// StatePersistence stores a node's own StateObject so a restarted node comes
// back with its state and generation order. The host calls Save after each
// mutation and before publishing it, and Load once at start, both from the
// state's actor goroutine; both may block up to ctx's deadline.
//
// Save must not acknowledge (return nil) before the object is durable at the
// implementation's level of durability. Implementations return a
// *PersistError.
type StatePersistence[S any] interface {
	// Save stores obj. encodedDelta is the wire encoding of the change's view
	// delta for delta states (nil otherwise), so an implementation may append
	// deltas instead of rewriting the state. The callee must not keep obj.Value
	// beyond the call unless it copies it.
	Save(ctx context.Context, obj *StateObject[S], encodedDelta []byte) error
	// Load returns the last saved object, or (nil, nil) if none was saved.
	Load(ctx context.Context) (*StateObject[S], error)
}

// DecodeStored decodes a persisted state written in storageVersion: with
// decode when it is the definition's current version, else with the
// definition's MigrateState when it implements [StateMigrator]. Backends that
// store bytes use it in Load.
func DecodeStored[S any](def interface {
	StorageVersion() uint32
	DecodeState([]byte, uint32) (S, error)
}, data []byte, storageVersion uint32) (S, error) {
	if storageVersion == def.StorageVersion() {
		return def.DecodeState(data, storageVersion)
	}
	if m, ok := def.(StateMigrator[S]); ok {
		return m.MigrateState(data, storageVersion)
	}
	var zero S
	return zero, UnknownVersionError(storageVersion)
}
