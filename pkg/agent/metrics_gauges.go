package agent

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/raftpersist"
)

// The gauges an operator watches replication with: per state and peer,
// how long ago this node's view of the peer was last confirmed and how
// many generations it trails what the peer announced; on Raft servers,
// the server's own role and indexes and, on the leader, how far each
// follower trails it.
var (
	descViewAge = prometheus.NewDesc("dstate_view_age_seconds",
		"Seconds since this node's view of a peer's state was last confirmed (a snapshot, delta or digest that found it current).",
		[]string{"state", "peer"}, nil)
	descViewLag = prometheus.NewDesc("dstate_view_generation_lag",
		"Generations this node's view of a peer's state trails the newest one the peer announced (0 when none is pending).",
		[]string{"state", "peer"}, nil)
	descRaftLeader  = prometheus.NewDesc("dstate_raft_is_leader", "1 while this server is the Raft leader, else 0.", nil, nil)
	descRaftTerm    = prometheus.NewDesc("dstate_raft_term", "This server's current Raft term.", nil, nil)
	descRaftCommit  = prometheus.NewDesc("dstate_raft_commit_index", "This server's Raft commit index.", nil, nil)
	descRaftApplied = prometheus.NewDesc("dstate_raft_applied_index",
		"The last Raft index this server applied to its state machine.", nil, nil)
	descRaftContact = prometheus.NewDesc("dstate_raft_last_contact_seconds",
		"Seconds since this server last heard from the Raft leader (0 on the leader; absent when it never has).", nil, nil)
	descFollowerTrails = prometheus.NewDesc("dstate_raft_follower_trails_by_entries",
		"On the leader: log entries a follower's log trails the leader's last index.", []string{"peer"}, nil)
	descFollowerContact = prometheus.NewDesc("dstate_raft_follower_last_contact_seconds",
		"On the leader: seconds since a follower last heard from the leader, as the follower reports it (or, when it cannot be asked, since the leader's heartbeats last reached it).",
		[]string{"peer"}, nil)
)

// viewSource is a registered state whose views the gauges describe.
type viewSource interface {
	viewGauges(now time.Time, self dstate.NodeID, emit func(peer dstate.NodeID, age time.Duration, lag uint64))
}

func (h *shardHandle[S, V]) viewGauges(now time.Time, self dstate.NodeID, emit func(dstate.NodeID, time.Duration, uint64)) {
	views := h.shard.Views()
	views.All(func(id dstate.NodeID, v *dstate.StateViewObject[V]) bool {
		if id != self {
			emit(id, now.Sub(views.SyncedAt(v)), generationLag(v.Generation, v.Pending))
		}
		return true
	})
}

// generationLag is how many generations held trails pending: the
// difference in age within one incarnation, the pending age when the peer
// restarted since, 0 when nothing newer is pending.
func generationLag(held, pending dstate.Generation) uint64 {
	switch {
	case pending.IsZero() || !held.Less(pending):
		return 0
	case pending.Incarnation == held.Incarnation:
		return pending.Age - held.Age
	}
	return max(pending.Age, 1)
}

// collectViews reports the view gauges of every registered state.
func (a *Agent) collectViews(ch chan<- prometheus.Metric) {
	now, self := a.clock.Now(), dstate.NodeID(a.cfg.NodeID)
	for name, h := range a.states.snapshot() {
		vs, ok := h.(viewSource)
		if !ok {
			continue
		}
		vs.viewGauges(now, self, func(peer dstate.NodeID, age time.Duration, lag uint64) {
			ch <- prometheus.MustNewConstMetric(descViewAge, prometheus.GaugeValue, max(age, 0).Seconds(), name, string(peer))
			ch <- prometheus.MustNewConstMetric(descViewLag, prometheus.GaugeValue, float64(lag), name, string(peer))
		})
	}
}

// followerStatsMaxAge is how long the leader reuses the followers' figures
// between scrapes; followerStatsTimeout bounds how long a scrape waits for
// them.
const (
	followerStatsMaxAge  = 2 * time.Second
	followerStatsTimeout = time.Second
)

// followerStats caches what the followers reported, so scrapes close
// together ask them once.
type followerStats struct {
	mu    sync.Mutex
	at    time.Time
	peers []raftpersist.PeerStats
}

// collect reports the Raft gauges: this server's own, and on the leader
// the followers'.
func (rc *raftConsensus) collect(ch chan<- prometheus.Metric) {
	r := rc.store.Raft()
	leader := rc.store.IsLeader()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descRaftLeader, map[bool]float64{true: 1}[leader])
	gauge(descRaftTerm, float64(r.CurrentTerm()))
	gauge(descRaftCommit, float64(r.CommitIndex()))
	gauge(descRaftApplied, float64(r.AppliedIndex()))
	switch lc := r.LastContact(); {
	case leader:
		gauge(descRaftContact, 0)
	case !lc.IsZero():
		gauge(descRaftContact, time.Since(lc).Seconds())
	}
	if !leader {
		return
	}
	for _, p := range rc.followers() {
		if p.ID == rc.store.ID() {
			continue
		}
		if p.Err == "" {
			gauge(descFollowerTrails, float64(p.Trailing), string(p.ID))
		}
		if p.LastContact >= 0 {
			gauge(descFollowerContact, p.LastContact.Seconds(), string(p.ID))
		}
	}
}

// followers returns the servers' replication figures, asked at most every
// followerStatsMaxAge.
func (rc *raftConsensus) followers() []raftpersist.PeerStats {
	fs := &rc.followerStats
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if time.Since(fs.at) < followerStatsMaxAge {
		return fs.peers
	}
	ctx, cancel := context.WithTimeout(context.Background(), followerStatsTimeout)
	defer cancel()
	cs, err := rc.store.Stats(ctx)
	if err != nil {
		return nil
	}
	fs.at, fs.peers = time.Now(), cs.Peers
	return fs.peers
}
