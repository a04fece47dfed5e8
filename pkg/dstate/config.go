package dstate

import (
	"fmt"
	"time"
)

// DefaultBatchInterval is the change-feed flush interval when none is set.
const DefaultBatchInterval = time.Second

// DefaultPullTimeout is how long a blocking query waits for stale peers.
const DefaultPullTimeout = 5 * time.Second

// ChangeFeedConfig configures the change-notice feed.
type ChangeFeedConfig struct {
	// BatchInterval is how often pending notices are flushed as one
	// BatchedChangeFeed. Zero means DefaultBatchInterval.
	BatchInterval time.Duration
}

// SyncStrategy composes how a state travels between nodes. The zero value
// is active push (the zero PushMode is ActivePush) with no periodic full
// sync and no pull on query: the same as ActivePushStrategy. Set PushMode to
// PushNone for a state that pushes nothing on change.
type SyncStrategy struct {
	// PushMode decides what a Default-urgency mutation does.
	PushMode PushMode
	// PeriodicFullSync, when positive, broadcasts a full snapshot at this
	// interval: the safety net for lost deltas and suppressed changes.
	PeriodicFullSync time.Duration
	// PullOnQuery makes a query request snapshots from the stale peers.
	PullOnQuery bool
	// ChangeFeed configures the notice feed used by ActiveFeedLazyPull.
	ChangeFeed ChangeFeedConfig
}

// ActivePushStrategy pushes every change as it happens.
func ActivePushStrategy() SyncStrategy {
	return SyncStrategy{PushMode: ActivePush, ChangeFeed: ChangeFeedConfig{BatchInterval: DefaultBatchInterval}}
}

// FeedLazyPullStrategy sends batched change notices and pulls on query.
func FeedLazyPullStrategy() SyncStrategy {
	return SyncStrategy{PushMode: ActiveFeedLazyPull, PullOnQuery: true, ChangeFeed: ChangeFeedConfig{BatchInterval: DefaultBatchInterval}}
}

// FeedWithPeriodicSyncStrategy sends batched notices, pulls on query and
// broadcasts a full snapshot every interval.
func FeedWithPeriodicSyncStrategy(interval time.Duration) SyncStrategy {
	s := FeedLazyPullStrategy()
	s.PeriodicFullSync = interval
	return s
}

// PeriodicOnlyStrategy pushes nothing on change and broadcasts a full
// snapshot every interval.
func PeriodicOnlyStrategy(interval time.Duration) SyncStrategy {
	return SyncStrategy{PushMode: PushNone, PeriodicFullSync: interval, ChangeFeed: ChangeFeedConfig{BatchInterval: DefaultBatchInterval}}
}

// BatchInterval returns the effective change-feed interval.
func (s SyncStrategy) BatchInterval() time.Duration {
	if s.ChangeFeed.BatchInterval <= 0 {
		return DefaultBatchInterval
	}
	return s.ChangeFeed.BatchInterval
}

// VersionMismatchPolicy says what a receiver does with a peer's view when a
// message arrives in a wire version it cannot read.
type VersionMismatchPolicy uint8

// The mismatch policies.
const (
	// KeepStale keeps the last good view of the peer (it ages into staleness).
	KeepStale VersionMismatchPolicy = iota
	// DropAndWait drops the peer's view until a readable one arrives.
	DropAndWait
)

// String names the policy.
func (p VersionMismatchPolicy) String() string {
	if p == DropAndWait {
		return "drop-and-wait"
	}
	return "keep-stale"
}

// Durability says where a state's owned value is persisted.
type Durability uint8

// The durability modes.
const (
	// Memory keeps the state in memory only: a restarted node starts empty
	// with a new incarnation.
	Memory Durability = iota
	// Local saves every mutation to a file on the node (fsynced) before
	// publishing it: a restarted node restores it without a quorum.
	Local
	// Raft saves every mutation through the cluster's Raft log before
	// publishing it: durable and linearized, readable from any node.
	Raft
)

// String names the mode.
func (d Durability) String() string {
	switch d {
	case Memory:
		return "memory"
	case Local:
		return "local"
	case Raft:
		return "raft"
	}
	return fmt.Sprintf("durability(%d)", uint8(d))
}

// ParseDurability reads "memory", "local" or "raft".
func ParseDurability(s string) (Durability, error) {
	for _, d := range []Durability{Memory, Local, Raft} {
		if d.String() == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("dstate: durability %q is not memory, local or raft", s)
}

// StateConfig is the per-state configuration. The zero value is usable, to
// an engine and a host alike: active push (a zero SyncStrategy), with
// DefaultPullTimeout, KeepStale and Memory durability.
type StateConfig struct {
	SyncStrategy SyncStrategy
	// PullTimeout bounds how long a query waits for a stale peer's
	// snapshot and how long a snapshot request stays outstanding: a peer
	// that answers none within it counts as failed (unresponsive) until it
	// is heard from again. Zero means DefaultPullTimeout.
	PullTimeout           time.Duration
	VersionMismatchPolicy VersionMismatchPolicy
	// Durability selects the persistence the host gives the state when the
	// registration does not bring its own.
	Durability Durability
}

// DefaultStateConfig returns active push, a 5 s pull timeout and KeepStale.
func DefaultStateConfig() StateConfig {
	return StateConfig{SyncStrategy: ActivePushStrategy(), PullTimeout: DefaultPullTimeout}
}

// EffectivePullTimeout returns PullTimeout or DefaultPullTimeout when unset.
func (c StateConfig) EffectivePullTimeout() time.Duration {
	if c.PullTimeout <= 0 {
		return DefaultPullTimeout
	}
	return c.PullTimeout
}

// Validate reports the first invalid field; it changes nothing.
func (c StateConfig) Validate() error {
	switch {
	case c.SyncStrategy.PushMode > PushNone:
		return fmt.Errorf("dstate: SyncStrategy.PushMode %d is not a push mode", c.SyncStrategy.PushMode)
	case c.SyncStrategy.PeriodicFullSync < 0:
		return fmt.Errorf("dstate: SyncStrategy.PeriodicFullSync %s is negative", c.SyncStrategy.PeriodicFullSync)
	case c.SyncStrategy.ChangeFeed.BatchInterval < 0:
		return fmt.Errorf("dstate: SyncStrategy.ChangeFeed.BatchInterval %s is negative", c.SyncStrategy.ChangeFeed.BatchInterval)
	case c.PullTimeout < 0:
		return fmt.Errorf("dstate: PullTimeout %s is negative", c.PullTimeout)
	case c.VersionMismatchPolicy > DropAndWait:
		return fmt.Errorf("dstate: VersionMismatchPolicy %d is not a policy", c.VersionMismatchPolicy)
	case c.Durability > Raft:
		return fmt.Errorf("dstate: Durability %d is not memory, local or raft", c.Durability)
	}
	return nil
}
