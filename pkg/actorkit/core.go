package actorkit

import "github.com/dstate-go/dstate/pkg/dstate"

// Core bundles the bookkeeping of one runtime: its Names, Groups, Timers
// and Counters, wired to one Binding. A runtime keeps a Core, delegates to
// its parts, and calls Forget when one of its actors stops and Close when
// it closes.
type Core[A Actor] struct {
	// Names holds the running actors by name.
	Names *Names[A]
	// Groups holds the processing groups.
	Groups *Groups[A]
	// Timers schedules the SendAfter and SendInterval timers.
	Timers *Timers[A]
	// Counters are the statistics the runtime adds to.
	Counters Counters
}

// NewCore returns the bookkeeping of a runtime whose actors bind describes,
// with timers on clock. Names wraps errClosed and errDuplicate, the
// runtime's sentinels (see NewNames).
func NewCore[A Actor](clock dstate.TimerClock, bind Binding[A], errClosed, errDuplicate error) *Core[A] {
	return &Core[A]{
		Names:  NewNames[A](errClosed, errDuplicate),
		Groups: NewGroups(bind),
		Timers: NewTimers(clock, bind),
	}
}

// Forget frees the name of a, removes it from its groups and cancels its
// timers. The runtime calls it once Stop has been called on a (see
// Binding.Stopping).
func (c *Core[A]) Forget(a A) {
	c.Names.Remove(a)
	c.Groups.LeaveAll(a)
	c.Timers.CancelAll(a)
}

// Close makes later Names.Add calls fail, cancels every timer and stops
// every running actor through its Stop, which calls Forget. It does not
// wait for the actors to finish: the runtime does that after Close.
func (c *Core[A]) Close() {
	actors := c.Names.Close()
	c.Timers.Close()
	for _, a := range actors {
		a.Stop()
	}
}

// Stats returns the runtime's statistics: the Counters and the timer ticks
// dropped.
func (c *Core[A]) Stats() Stats { return c.Counters.Stats(c.Timers.Dropped()) }
