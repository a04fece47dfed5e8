package protoactor

import (
	"log/slog"
	"time"

	"github.com/dstate-go/dstate/pkg/actorkit"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// SendInterval delivers msg to target every interval, the first time one
// interval from now, until cancelled or target stops. Ticks are due at
// fixed times (start + k·interval); a tick whose target's mailbox is full
// is dropped and counted in Stats.TimerTicksDropped, and ticks missed while
// the clock ran late are skipped. A non-positive interval starts nothing
// (and is logged).
func (r *Runtime) SendInterval(target dstate.ActorRef, interval time.Duration, msg any) dstate.TimerHandle {
	if interval > 0 {
		return r.kit.Timers.SendInterval(target, interval, msg)
	}
	r.logger.Error("protoactor: SendInterval with non-positive interval ignored", slog.Duration("interval", interval))
	return actorkit.NopTimer{}
}

// SendAfter delivers msg to target once, after delay, through the
// configured Clock. The delivery never blocks: if the mailbox is full then,
// the message is dropped and counted in Stats.TimerTicksDropped. The timer
// is cancelled when target is stopped; after Close, or for a target that
// has already stopped, SendAfter starts nothing.
func (r *Runtime) SendAfter(target dstate.ActorRef, delay time.Duration, msg any) dstate.TimerHandle {
	return r.kit.Timers.SendAfter(target, delay, msg)
}
