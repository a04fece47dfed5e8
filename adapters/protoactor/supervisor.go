package protoactor

import (
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// supervisor is the proto.actor SupervisorStrategy of every actor of a
// Runtime, installed as the guardian of the actors it spawns. proto.actor
// calls HandleFailure after a handler panicked, with the actor's mailbox
// suspended; the strategy restarts the actor after the runtime's backoff,
// measured on the runtime's Clock, or stops it.
type supervisor struct{ rt *Runtime }

var _ actor.SupervisorStrategy = (*supervisor)(nil)

// HandleFailure implements actor.SupervisorStrategy. proto.actor calls it
// on the failed actor's goroutine; it never blocks.
func (s *supervisor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID,
	_ *actor.RestartStatistics, reason any, _ any) {
	r := s.rt
	a, ok := r.lookup(child)
	if !ok { // stopped meanwhile, or not ours
		sup.StopChildren(child)
		return
	}
	if r.cfg.Supervision == StopOnPanic {
		r.logger.Warn("protoactor: stopping actor after panic", slog.String("actor", a.name))
		a.Stop()
		return
	}
	n := int(a.consecutive.Load())
	if n < 1 {
		n = 1 // a failure outside the handler (proto.actor's own)
	}
	d := r.cfg.Backoff(n)
	r.logger.Warn("protoactor: restarting actor after backoff",
		slog.String("actor", a.name),
		slog.Duration("backoff", d),
		slog.Int("consecutive_panics", n),
		slog.Any("reason", reason))
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.stopped.Load() {
		return // Stop ran after the lookup; its Stop message ends the actor
	}
	a.restart = r.clock.AfterFunc(d, func() {
		r.mu.Lock()
		stopped := a.stopped.Load()
		a.restart = nil
		r.mu.Unlock()
		if stopped {
			return
		}
		r.kit.Counters.Restarts.Add(1)
		sup.RestartChildren(child)
	})
}
