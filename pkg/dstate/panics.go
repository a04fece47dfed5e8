package dstate

import (
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
)

// ErrCallbackPanic: a user callback (a mutation function or a method of the
// state's definition) panicked. The engine or host recovered the panic; a
// *CallbackPanicError carries it.
var ErrCallbackPanic = errors.New("dstate: callback panicked")

// Names of the callbacks a [CallbackPanicError] reports.
const (
	CallbackMutation     = "mutation"     // the function passed to a mutation
	CallbackProjectView  = "ProjectView"  // Codec.Project / DeltaDistributedState.ProjectView
	CallbackProjectDelta = "ProjectDelta" // DeltaDistributedState.ProjectDelta
	CallbackSyncUrgency  = "SyncUrgency"  // UrgencyDecider.SyncUrgency
	CallbackEncodeView   = "EncodeView"   // the view (snapshot) encoder
	CallbackEncodeDelta  = "EncodeDelta"  // DeltaDistributedState.EncodeDelta
	CallbackEncodeState  = "EncodeState"  // the owned value's encoder (checkpoints, persistence)
	CallbackDecodeView   = "DecodeView"   // the view decoder of a peer's snapshot
	CallbackApplyDelta   = "ApplyDelta"   // decoding and applying a peer's delta
	CallbackDecodeState  = "DecodeState"  // the owned value's decoder (restore, persistence)
	CallbackMigrateState = "MigrateState" // StateMigrator.MigrateState
	CallbackPersistence  = "persistence"  // the state's StatePersistence
	CallbackHost         = "host"         // anything else the host ran for a mutation
)

// CallbackPanicError reports a user callback that panicked. The panic was
// recovered on the state's actor: a mutation that panicked left the owned
// state, its generation and everything published or persisted as they were
// before it (see the package doc); a peer's message whose decoding panicked
// counts as malformed.
//
// It matches ErrCallbackPanic with errors.Is and, when Value is an error
// (a runtime.Error, for instance), that error as well.
type CallbackPanicError struct {
	// Callback names the callback (one of the Callback… constants).
	Callback string
	// State is the state's name.
	State string
	// Value is the value the callback panicked with.
	Value any
	// Stack is the panicking goroutine's stack at the recovery.
	Stack []byte
}

// Error implements error.
func (e *CallbackPanicError) Error() string {
	return fmt.Sprintf("dstate: state %q: callback %s panicked: %v", e.State, e.Callback, e.Value)
}

// Unwrap returns ErrCallbackPanic, and Value when it is an error.
func (e *CallbackPanicError) Unwrap() []error {
	if err, ok := e.Value.(error); ok {
		return []error{ErrCallbackPanic, err}
	}
	return []error{ErrCallbackPanic}
}

// RecoveredPanic returns the *CallbackPanicError of a value recover
// returned, with the current goroutine's stack. Hosts call it in their own
// deferred recovers.
func RecoveredPanic(callback, state string, value any) *CallbackPanicError {
	return &CallbackPanicError{Callback: callback, State: state, Value: value, Stack: debug.Stack()}
}

// copyRestores reports whether a plain copy of a value of type t is a
// complete checkpoint of it: t holds nothing a mutation could change in
// place through the copy (no map, slice, pointer or interface). Strings are
// immutable; channels and functions are restored as the references they
// are. A type that implements [Persistent] is never changed in place.
func copyRestores(t reflect.Type) bool {
	if t.Implements(persistentType) {
		return true
	}
	switch t.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface, reflect.UnsafePointer:
		return false
	case reflect.Array:
		return t.Len() == 0 || copyRestores(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !copyRestores(t.Field(i).Type) {
				return false
			}
		}
	}
	return true
}

// Mutation stages, for naming the callback that panicked.
const (
	stageMutation uint8 = iota
	stageProjectView
	stageProjectDelta
	stageSyncUrgency
	stageEncodeDelta
	stageEncodeView
)

var stageNames = [...]string{
	stageMutation: CallbackMutation, stageProjectView: CallbackProjectView, stageProjectDelta: CallbackProjectDelta,
	stageSyncUrgency: CallbackSyncUrgency, stageEncodeDelta: CallbackEncodeDelta, stageEncodeView: CallbackEncodeView,
}

// checkpoint makes sure the owned value can be restored if the mutation
// about to run panics: a value without references is copied (free); any
// other is kept as an encoding of the current generation, which is reused
// when the engine already has one (the own snapshot of a simple state, the
// host's last save) and encoded otherwise. A panicking encoder is returned
// as the mutation's error; nothing has changed then.
func (e *Engine[S, V]) checkpoint() error {
	if e.copyOK {
		e.prevVal = e.obj.Value
		return nil
	}
	g := e.obj.Generation
	if e.ckptOK && e.ckptGen == g {
		return nil
	}
	if e.codec.ViewIsState && e.ownEncOK && e.ownEncGen == g {
		e.ckpt, e.ckptVer, e.ckptGen, e.ckptOK = e.ownEnc, e.wireVer, g, true
		return nil
	}
	if e.codec.EncodeState == nil || e.codec.DecodeState == nil {
		return nil // nothing to restore from: see Codec.EncodeState
	}
	b, err := e.encodeState(e.obj.Value)
	if err != nil {
		var pe *CallbackPanicError
		if errors.As(err, &pe) {
			return err
		}
		e.ckptOK = false
		return nil
	}
	e.ckpt, e.ckptVer, e.ckptGen, e.ckptOK = b, e.obj.StorageVersion, g, true
	return nil
}

// KeepStateEncoding records data, an encoding of the owned value at the
// current generation in the engine's storage version (what a host that
// persists has just saved), as the checkpoint the next mutation restores
// from if it panics, so that the value is not encoded again for it.
func (e *Engine[S, V]) KeepStateEncoding(data []byte) {
	if e.copyOK || data == nil {
		return
	}
	e.ckpt, e.ckptVer, e.ckptGen, e.ckptOK = data, e.obj.StorageVersion, e.obj.Generation, true
}

// Rollback undoes a prepared mutation from the checkpoint taken before it
// (see [Engine.TryPrepare]): the owned value, generation and modified time
// are what they were, and nothing was published. It does nothing when no
// mutation is prepared. It returns an error when the checkpoint could not be
// decoded; the generation is restored even then.
func (e *Engine[S, V]) Rollback() error {
	if !e.pend.active {
		return nil
	}
	var err error
	switch {
	case e.copyOK:
		e.obj.Value = e.prevVal
	case e.ckptOK && e.ckptGen == e.pend.prevGen:
		var v S
		if v, err = e.decodeState(e.ckpt, e.ckptVer); err == nil {
			e.obj.Value = v
			// A view that shares storage with the value (a simple state's
			// map, say) may hold the partial write: publish the restored
			// value's view again.
			if view, perr := e.project(&e.obj.Value); perr == nil {
				own := e.own()
				at := e.now()
				if own != nil {
					at = e.views.cur.SyncedAt(own)
				}
				e.obj.Generation, e.obj.ModifiedUnixMs = e.pend.prevGen, e.pend.prevMod
				e.publishOwn(view, at)
			}
		}
	default:
		err = fmt.Errorf("dstate: state %q: no checkpoint to restore the value from (its codec has no EncodeState)", e.name)
	}
	e.obj.Generation = e.pend.prevGen
	e.obj.ModifiedUnixMs = e.pend.prevMod
	e.pend = pending[V]{}
	return err
}

// undoPanic rolls back the mutation that panicked in stage and returns the
// panic as its error.
func (e *Engine[S, V]) undoPanic(stage uint8, value any) error {
	perr := RecoveredPanic(stageNames[stage], e.name, value)
	if rerr := e.Rollback(); rerr != nil {
		return errors.Join(perr, rerr)
	}
	return perr
}

// The guarded calls of user callbacks outside a mutation: a panic becomes a
// *CallbackPanicError.

func (e *Engine[S, V]) project(s *S) (v V, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = RecoveredPanic(CallbackProjectView, e.name, r)
		}
	}()
	return e.codec.Project(s), nil
}

func (e *Engine[S, V]) encodeView(v V) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, RecoveredPanic(CallbackEncodeView, e.name, r)
		}
	}()
	return e.codec.EncodeView(v)
}

func (e *Engine[S, V]) decodeView(data []byte, version uint32) (v V, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, err = zero, RecoveredPanic(CallbackDecodeView, e.name, r)
		}
	}()
	return e.codec.DecodeView(data, version)
}

func (e *Engine[S, V]) applyDelta(view V, data []byte, version uint32) (v V, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, err = zero, RecoveredPanic(CallbackApplyDelta, e.name, r)
		}
	}()
	return e.codec.ApplyDelta(view, data, version)
}

func (e *Engine[S, V]) encodeState(s S) (b []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, RecoveredPanic(CallbackEncodeState, e.name, r)
		}
	}()
	return e.codec.EncodeState(s)
}

func (e *Engine[S, V]) decodeState(data []byte, version uint32) (s S, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero S
			s, err = zero, RecoveredPanic(CallbackDecodeState, e.name, r)
		}
	}()
	return e.codec.DecodeState(data, version)
}
