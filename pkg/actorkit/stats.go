package actorkit

import "sync/atomic"

// Stats are a runtime's counters since it was created. Each is read
// atomically but they are not a consistent snapshot of one instant.
type Stats struct {
	// Panics counts handler calls that panicked.
	Panics uint64
	// Restarts counts actors restarted after a panic under RestartOnPanic.
	Restarts uint64
	// MessagesProcessed counts handler calls that returned normally.
	MessagesProcessed uint64
	// SendsRejected counts Send and BroadcastGroup deliveries that failed
	// because a mailbox was full or its actor had stopped.
	SendsRejected uint64
	// TimerTicksDropped counts timer deliveries dropped because the
	// target's mailbox was full.
	TimerTicksDropped uint64
}

// Counters are the live counters behind Stats, but for the dropped timer
// ticks, which Timers counts. The runtime adds to them as things happen.
type Counters struct {
	// Panics counts handler calls that panicked.
	Panics atomic.Uint64
	// Restarts counts restarts after a panic.
	Restarts atomic.Uint64
	// Processed counts handler calls that returned normally.
	Processed atomic.Uint64
	// Rejected counts failed sends.
	Rejected atomic.Uint64
}

// CountSend counts err in Rejected unless it is nil, and returns it: an
// actor's Send returns CountSend(send(msg)).
func (c *Counters) CountSend(err error) error {
	if err != nil {
		c.Rejected.Add(1)
	}
	return err
}

// Stats reads the counters, with ticksDropped (Timers.Dropped) for
// TimerTicksDropped.
func (c *Counters) Stats(ticksDropped uint64) Stats {
	return Stats{
		Panics:            c.Panics.Load(),
		Restarts:          c.Restarts.Load(),
		MessagesProcessed: c.Processed.Load(),
		SendsRejected:     c.Rejected.Load(),
		TimerTicksDropped: ticksDropped,
	}
}
