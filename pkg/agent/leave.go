package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/raftpersist"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// Leaving the cluster.
//
// A graceful stop (Agent.Stop, SIGTERM, dstatectl leave) first leaves the
// cluster, in this order:
//
//  1. Gossip: the agent announces that it leaves; the others mark it left
//     at once (no failure suspicion) and drop its views, and the Raft
//     leader's reconciliation will not add it back as a server.
//  2. Raft (servers): a leader hands leadership to the most up-to-date
//     voter; then the server asks the leader to remove it from the Raft
//     configuration and waits until the removal is committed (or its own
//     configuration no longer names it).
//
// Only then does it stop its components, so a server that has stopped no
// longer counts toward the quorum and the next one may stop at once:
// stopping servers one at a time keeps a leader down to the last one. The
// leave is bounded by leave_timeout (default [DefaultLeaveTimeout]) and by
// the caller's context. When the cluster cannot remove the server (no
// leader or no quorum within the timeout) the stop goes on and reports the
// error: the server stays a voter until it is removed from a server that
// has a quorum.
//
// The last voter is not removed (a configuration needs one voter): it
// keeps the cluster's Raft state and stops without error, and starting it
// again brings the cluster back. A cluster whose servers all stopped
// comes back when they start again, the last one to stop among them, also
// on new addresses: Raft dials each server of its configuration at the
// Raft address its gossip member announces now (matched by node ID, only
// for members that are alive), and the leader then writes the new
// addresses into the configuration. See raftpersist's leave.go.

// DefaultLeaveTimeout bounds a graceful leave when leave_timeout is zero.
const DefaultLeaveTimeout = 10 * time.Second

// LeaveResult is how the agent left the cluster (POST /v1/leave).
type LeaveResult struct {
	// Raft is what happened to this server in the Raft configuration:
	// "removed", "last-voter" (kept: the only voter), "not-a-member" (it
	// was not in the configuration), "none" (not a server) or "failed"
	// (it could not be removed; the leave's error says why).
	Raft string `json:"raft"`
	// Transferred is true when this server led and handed leadership over.
	Transferred bool `json:"leadership_transferred,omitempty"`
	// TookMs is how long the leave took, gossip and Raft.
	TookMs int64 `json:"took_ms"`
}

// Raft outcomes of a leave.
const (
	LeaveRaftRemoved    = "removed"
	LeaveRaftLastVoter  = "last-voter"
	LeaveRaftNotAMember = "not-a-member"
	LeaveRaftNotAServer = "none"
	LeaveRaftFailed     = "failed"
)

// ErrLeave is matched by the error of a leave that could not take this
// server out of the Raft configuration.
var ErrLeave = errors.New("agent: leave")

// leaveTimeout is the configured leave timeout or its default.
func leaveTimeout(cfg Config) time.Duration {
	if cfg.LeaveTimeout > 0 {
		return time.Duration(cfg.LeaveTimeout)
	}
	return DefaultLeaveTimeout
}

// leaveCluster leaves gossip and, on a server, the Raft configuration,
// once: later and concurrent calls get the first call's result.
func (a *Agent) leaveCluster(ctx context.Context) (LeaveResult, error) {
	a.leaveOnce.Do(func() {
		a.leaveRes, a.leaveErr = a.leaveNow(ctx)
	})
	return a.leaveRes, a.leaveErr
}

func (a *Agent) leaveNow(ctx context.Context) (LeaveResult, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, leaveTimeout(a.cfg))
	defer cancel()
	res := LeaveResult{Raft: LeaveRaftNotAServer}
	if a.gossip != nil {
		if err := a.gossip.leave(ctx); err != nil {
			a.log.Warn("graceful gossip leave failed", "err", err)
		}
	}
	var err error
	if a.raft != nil {
		res.Raft = LeaveRaftFailed
		var rr raftpersist.LeaveResult
		rr, err = a.raft.store.Leave(ctx)
		res.Transferred = rr.Transferred
		switch {
		case errors.Is(err, raftpersist.ErrLastVoter):
			res.Raft, err = LeaveRaftLastVoter, nil
			a.log.Info("the last Raft voter stays in the configuration and keeps the cluster's state; start it again to bring the cluster back")
		case err != nil:
			err = fmt.Errorf("%w: this server is still a Raft voter (once the cluster has a quorum again, remove it there with dstatectl raft remove-peer %s): %w", ErrLeave, a.cfg.NodeID, err)
		case rr.Removed:
			res.Raft = LeaveRaftRemoved
		default:
			res.Raft = LeaveRaftNotAMember
		}
	}
	res.TookMs = time.Since(start).Milliseconds()
	if err == nil {
		a.log.Info("left the cluster", "raft", res.Raft, "leadership_transferred", res.Transferred, "took", time.Since(start).Round(time.Millisecond))
	}
	return res, err
}

// resolveServer returns the Raft address that the gossip member id
// announces now, for a member that is alive (or leaving): Raft dials a
// server of its configuration there (raftpersist.Config.ResolveServer).
func (rc *raftConsensus) resolveServer(id dstate.NodeID) (string, bool) {
	g := rc.gossip.Load()
	if g == nil {
		return "", false
	}
	for _, m := range g.Membership.Members() {
		if m.ID != id {
			continue
		}
		if m.Status != serfevents.StatusAlive && m.Status != serfevents.StatusLeaving {
			return "", false
		}
		srv, ok := raftServerOf(id, m.Tags)
		return srv.Address, ok
	}
	return "", false
}
