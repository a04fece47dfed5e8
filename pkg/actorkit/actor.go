package actorkit

import "github.com/dstate-go/dstate/pkg/dstate"

// Ref returns a as a dstate.ActorRef, or nil with err if err is not nil
// (rather than an interface holding a nil A): a runtime's Spawn returns
// Ref(SpawnActor(name, handler)).
func Ref[A Actor](a A, err error) (dstate.ActorRef, error) {
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Actor is the constraint on a runtime's actor type: a [dstate.ActorRef]
// that can key a map, in practice a pointer such as *gosched.Actor.
type Actor interface {
	comparable
	dstate.ActorRef
}

// Binding tells [Groups] and [Timers] how to deal with the actors of one
// runtime. All its fields must be set; the functions are called with no
// lock of the runtime held, and must not block.
type Binding[A Actor] struct {
	// Belongs reports whether a (never the zero A) is an actor of the
	// runtime rather than of another runtime with the same actor type.
	Belongs func(a A) bool
	// Stopping reports whether Stop has been called on a. Once it has
	// reported true it must keep doing so, and the runtime must call
	// Groups.LeaveAll and Timers.CancelAll for a only after Stopping turned
	// true: the kit checks Stopping under its lock before it registers a
	// in a group or a timer, so that nothing is registered after the
	// clean-up.
	Stopping func(a A) bool
	// Deliver enqueues msg to a without blocking, as a.Send does, but
	// without counting a failure in the runtime's statistics: timer ticks
	// to the runtime's own actors go through it, and a dropped tick is
	// counted by Timers instead.
	Deliver func(a A, msg any) error
	// ErrForeign is the runtime's sentinel for a ref Own rejects, such as
	// gosched.ErrForeignActor; Groups.Join and Groups.Leave return it in a
	// *dstate.GroupError.
	ErrForeign error
}

// Own returns ref as an actor of the runtime: an A for which Belongs
// reports true. It returns false for nil, the zero A (a nil pointer) and a
// ref of another runtime.
func (b Binding[A]) Own(ref dstate.ActorRef) (A, bool) {
	a, ok := ref.(A)
	var zero A
	if !ok || a == zero || !b.Belongs(a) {
		return zero, false
	}
	return a, true
}
