package dstate

import (
	"sync/atomic"
	"time"
)

// SyncMetrics are an engine's monotonic counters.
type SyncMetrics struct {
	TotalMutations       uint64 // committed mutations
	DeltasSent           uint64 // delta messages built (broadcast or scheduled; once per message, not per peer)
	DeltasReceived       uint64 // inbound deltas applied
	SnapshotsSent        uint64 // snapshot messages built (mutation, schedule, join, pull reply, periodic)
	SnapshotsReceived    uint64 // inbound snapshots accepted as newer
	SnapshotsConfirmed   uint64 // inbound snapshots of the generation already held (freshness renewed)
	DeltasSuppressed     uint64 // mutations that sent nothing (Suppress, or Default without push)
	Immediate            uint64 // mutations with Immediate urgency
	Delayed              uint64 // mutations with Delayed urgency
	NoticesSent          uint64 // change notices handed to the feed
	NoticesReceived      uint64 // inbound notices that marked a view stale
	NoticesRefused       uint64 // inbound notices about another node than the feed's sender, ignored
	NoticesOverruled     uint64 // pending generations cleared because the owner's answer to a pull was older
	SnapshotRequestsSent uint64 // RequestSnapshot messages built (gaps and pulls)
	SyncFailures         uint64 // version mismatches, malformed payloads, failed delta applies
	AgeGaps              uint64 // inbound deltas that skipped ages
	StaleDiscarded       uint64 // inbound deltas and snapshots older than the view held
	DepartedIgnored      uint64 // inbound messages from departed nodes
	EncodeFailures       uint64 // views or deltas the state could not encode
	DigestsReceived      uint64 // inbound digest entries about this state
	DigestsBehind        uint64 // inbound digest entries that showed the view held to be behind
	ChunksSent           uint64 // snapshot chunks sent (streamed snapshots, see ChunkedViewCodec)
	ChunksReceived       uint64 // inbound snapshot chunks decoded into a stream in progress
}

type metrics struct {
	totalMutations, deltasSent, deltasReceived, snapshotsSent, snapshotsReceived, snapshotsConfirmed,
	deltasSuppressed, immediate, delayed, noticesSent, noticesReceived, noticesRefused, noticesOverruled, requestsSent, syncFailures,
	ageGaps, staleDiscarded, departedIgnored, encodeFailures atomic.Uint64
	digestsReceived, digestsBehind atomic.Uint64
	chunksSent, chunksReceived     atomic.Uint64
}

func (m *metrics) snapshot() SyncMetrics {
	return SyncMetrics{
		TotalMutations: m.totalMutations.Load(), DeltasSent: m.deltasSent.Load(), DeltasReceived: m.deltasReceived.Load(),
		SnapshotsSent: m.snapshotsSent.Load(), SnapshotsReceived: m.snapshotsReceived.Load(), SnapshotsConfirmed: m.snapshotsConfirmed.Load(),
		DeltasSuppressed: m.deltasSuppressed.Load(), Immediate: m.immediate.Load(), Delayed: m.delayed.Load(),
		NoticesSent: m.noticesSent.Load(), NoticesReceived: m.noticesReceived.Load(), NoticesRefused: m.noticesRefused.Load(),
		NoticesOverruled: m.noticesOverruled.Load(), SnapshotRequestsSent: m.requestsSent.Load(),
		SyncFailures: m.syncFailures.Load(), AgeGaps: m.ageGaps.Load(), StaleDiscarded: m.staleDiscarded.Load(),
		DepartedIgnored: m.departedIgnored.Load(), EncodeFailures: m.encodeFailures.Load(),
		DigestsReceived: m.digestsReceived.Load(), DigestsBehind: m.digestsBehind.Load(),
		ChunksSent: m.chunksSent.Load(), ChunksReceived: m.chunksReceived.Load(),
	}
}

// HealthStatus summarizes an engine's or a node's health.
type HealthStatus uint8

// The health levels.
const (
	// Healthy: no peer is stale or failing.
	Healthy HealthStatus = iota
	// Degraded: a strict majority of peers is healthy.
	Degraded
	// Unhealthy: half of the peers or more are stale or failing.
	Unhealthy
)

// String names the status.
func (s HealthStatus) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Degraded:
		return "degraded"
	}
	return "unhealthy"
}

// EngineHealth is one state's health as seen by one node.
type EngineHealth struct {
	State        string
	HealthyPeers int
	StalePeers   int
	FailingPeers int
	Status       HealthStatus
}

// PeerStatus is the sync status of one peer as seen by one engine.
type PeerStatus struct {
	Node                NodeID
	Generation          Generation // of the view held (zero: none yet)
	Pending             Generation // announced, not yet received
	LastSync            time.Time  // monotonic time of the last accepted update (zero: never)
	LastAttempt         time.Time  // monotonic time of the last inbound message from the peer
	ConsecutiveFailures uint32
	LastError           string
	LastLatency         time.Duration // sender's timestamp to receipt, wall clock (skew included)
	Gaps                uint64
	// Failed, when not empty, says why the peer counts as failed: the
	// membership layer reported it failed, it answered no snapshot request
	// within the pull timeout, or there is no readable view of it. Queries
	// neither pull it nor wait for it, and name it in QueryResult.Failed
	// (QueryError.Failed) while its view is stale.
	Failed string
}
