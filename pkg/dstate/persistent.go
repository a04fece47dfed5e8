package dstate

import "reflect"

// Persistent is implemented by an owned value type that is never changed
// in place: every update of such a value makes a new one that may share
// storage with the old (a persistent map, say). A plain copy of it is then
// a complete checkpoint of the value, so the engine restores a panicking
// mutation from that copy instead of encoding the value before each
// mutation (see [Engine.TryPrepare]); a write to a large persistent value
// then costs what the update costs, not an encoding of the whole value.
//
// A type that implements Persistent but hands out something a mutation
// could change in place (a map, a slice, a pointer to mutable data) breaks
// the rollback of a panicking mutation.
type Persistent interface {
	// PersistentValue marks the type; it is never called.
	PersistentValue()
}

var persistentType = reflect.TypeFor[Persistent]()
