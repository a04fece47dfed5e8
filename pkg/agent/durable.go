package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dstate-go/dstate/internal/backoff"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/raftpersist"
)

// Registering durable-kv loads its state through Raft, which needs a
// leader. The agent registers it in the background: an attempt that fails
// because no leader is known is retried as soon as Raft learns one (Raft
// is asked every durablePoll), and any failed attempt after a backoff
// growing from durableRetryMin to durableRetryMax. Until it is registered,
// durable-kv answers "not ready" with the last attempt's cause ("no Raft
// leader yet", "lost quorum: 1 of 3 voters reachable").
const (
	durablePoll     = 20 * time.Millisecond
	durableRetryMin = 50 * time.Millisecond
	durableRetryMax = time.Second
	// durableAttempt bounds one registration attempt; the Raft store
	// answers sooner when no leader can be found (raftpersist.QuorumError).
	durableAttempt = 10 * time.Second
)

// registerDurableKV registers durable-kv, retrying while Raft cannot load
// its state, until it succeeds or the agent stops.
func (b *builtins) registerDurableKV(cfg dstate.StateConfig) {
	retry := backoff.Backoff{Policy: backoff.Policy{Min: durableRetryMin, Max: durableRetryMax}}
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), durableAttempt)
		go func() { // a stop ends the attempt
			select {
			case <-b.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		s, err := registerDelta(ctx, b.node, b.states, KVDef{StateName: DurableKVState}, node.StateOptions[KV]{Config: cfg, Initial: KV{}})
		cancel()
		if err == nil {
			b.mu.Lock()
			b.durableKV, b.durableErr = s, nil
			b.mu.Unlock()
			b.log.Info("durable-kv ready", "generation", s.Generation().String(), "attempts", attempt)
			return
		}
		b.mu.Lock()
		b.durableErr = err
		b.mu.Unlock()
		if attempt == 1 || attempt%20 == 0 {
			b.log.Warn("durable-kv waits for Raft", "attempt", attempt, "err", err)
		}
		leaderless := errors.Is(err, raftpersist.ErrNoLeader)
		if !b.waitDurableRetry(retry.Next(), leaderless) {
			return
		}
	}
}

// waitDurableRetry waits for backoff, or, after a leaderless attempt,
// until Raft knows a leader; false when the agent stops.
func (b *builtins) waitDurableRetry(backoff time.Duration, leaderless bool) bool {
	t := time.NewTicker(durablePoll)
	defer t.Stop()
	deadline := time.Now().Add(backoff)
	for {
		select {
		case <-b.stop:
			return false
		case now := <-t.C:
			if !now.Before(deadline) {
				return true
			}
			if leaderless && b.leaderKnown() {
				return true
			}
		}
	}
}

// durableNotReady is the error durable-kv answers with until it is
// registered: the last registration attempt's cause, when there was one.
func (b *builtins) durableNotReady() error {
	b.mu.Lock()
	cause := b.durableErr
	b.mu.Unlock()
	if cause == nil {
		return fmt.Errorf("%w: state %q is being loaded through Raft", errNotReady, DurableKVState)
	}
	return fmt.Errorf("%w: state %q is not loaded yet: %w", errNotReady, DurableKVState, cause)
}
