package node

import "github.com/dstate-go/dstate/pkg/dstate"

// guarded runs fn, a call into user code of state, and returns a panic in
// it as a *dstate.CallbackPanicError naming callback.
func guarded(state, callback string, fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = dstate.RecoveredPanic(callback, state, v)
		}
	}()
	return fn()
}
