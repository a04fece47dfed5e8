package raftpersist

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// While no leader is known, a save or linearizable read does not wait
// blindly for its context to end: it says why there is no leader. A store
// whose configuration names no server (not bootstrapped yet) fails at once;
// otherwise the store asks every voter of its configuration for its
// statistics (the forwarding protocol's stats request, in parallel, bounded
// by HeartbeatTimeout, at least 1 s) and fails at once when fewer than a
// quorum answer (ErrNoQuorum). When a quorum answers, an election is under
// way or about to be: the call keeps retrying for the leader hold (five
// election rounds, at least 2 s) and then fails with ErrNoLeader. Either
// error is a *QuorumError naming how many voters answered.

// QuorumError says why no leader could serve a request: how many voters
// the configuration holds and how many of them answered. It matches
// ErrNoLeader, and ErrNoQuorum when fewer than a quorum answered.
type QuorumError struct {
	// Voters is the number of voters in this server's configuration; 0
	// means the cluster is not bootstrapped yet.
	Voters int
	// Reachable is how many of them answered (this server included when
	// it is a voter).
	Reachable int
	// Unreachable names the voters that did not answer, sorted.
	Unreachable []dstate.NodeID
}

// Quorum returns the number of voters a leader needs: a majority.
func (e *QuorumError) Quorum() int { return e.Voters/2 + 1 }

// Lost reports whether fewer than a quorum of the voters answered.
func (e *QuorumError) Lost() bool { return e.Voters > 0 && e.Reachable < e.Quorum() }

// Error says "lost quorum: 1 of 3 voters reachable" or "no Raft leader
// yet", with what is known.
func (e *QuorumError) Error() string {
	switch {
	case e.Voters == 0:
		return "raftpersist: no Raft leader yet: this server's raft configuration names no voter (the cluster is not bootstrapped, or the leader has not added this server yet)"
	case e.Lost():
		return fmt.Sprintf("raftpersist: lost quorum: %d of %d voters reachable, %d needed (unreachable: %s)",
			e.Reachable, e.Voters, e.Quorum(), joinIDs(e.Unreachable))
	case len(e.Unreachable) > 0:
		return fmt.Sprintf("raftpersist: no Raft leader yet: %d of %d voters reachable (unreachable: %s), no leader elected",
			e.Reachable, e.Voters, joinIDs(e.Unreachable))
	}
	return fmt.Sprintf("raftpersist: no Raft leader yet: %d of %d voters reachable, no leader elected", e.Reachable, e.Voters)
}

// Unwrap returns ErrNoLeader, and ErrNoQuorum too when the quorum is lost.
func (e *QuorumError) Unwrap() []error {
	if e.Lost() {
		return []error{ErrNoQuorum, ErrNoLeader}
	}
	return []error{ErrNoLeader}
}

func joinIDs(ids []dstate.NodeID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, ", ")
}

// quorumCache holds the last reachability check, so that the calls
// failing together share one round of stats requests.
type quorumCache struct {
	mu      sync.Mutex
	at      time.Time
	last    *QuorumError
	running chan struct{} // closed when the running check ends; nil when none runs
}

// leaderHold is how long a call keeps retrying while no leader is known
// but a quorum of the voters answers: an election should end by then,
// allowing for a few split votes and a loaded machine's late timers (five
// election rounds, at least 2 s).
func (s *Store) leaderHold() time.Duration {
	return max(5*(s.cfg.ElectionTimeout+s.cfg.HeartbeatTimeout), 2*time.Second)
}

// quorumReuse is how long a reachability check answers later calls too:
// the longest retry backoff of leaderCall, so a busy store checks at most
// about once per retry round, and a server back up counts soon.
func (s *Store) quorumReuse() time.Duration {
	return min(max(s.cfg.HeartbeatTimeout/4, 5*time.Millisecond), 100*time.Millisecond)
}

// noLeader explains the absence of a leader; it returns nil when a leader
// is known now. A check younger than quorumReuse is reused;
// otherwise one runs (once for every caller waiting at the time), bounded
// by ctx and the heartbeat timeout.
func (s *Store) noLeader(ctx context.Context) *QuorumError {
	if id, _ := s.Leader(); id != "" {
		return nil
	}
	q := &s.quorum
	q.mu.Lock()
	if q.last != nil && time.Since(q.at) < s.quorumReuse() {
		last := q.last
		q.mu.Unlock()
		return last
	}
	ch := q.running
	if ch == nil {
		ch = make(chan struct{})
		q.running = ch
		if !s.goTracked(func() {
			res := s.checkVoters()
			q.mu.Lock()
			q.last, q.at, q.running = res, time.Now(), nil
			q.mu.Unlock()
			close(ch)
		}) {
			q.running = nil
			q.mu.Unlock()
			return nil
		}
	}
	q.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.last
}

// checkVoters asks every voter of this server's configuration for its
// statistics and counts those that answer.
func (s *Store) checkVoters() *QuorumError {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return &QuorumError{}
	}
	var voters []raft.Server
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			voters = append(voters, srv)
		}
	}
	res := &QuorumError{Voters: len(voters)}
	// A voter that does not answer within a heartbeat timeout (at least
	// 1 s: a new connection's handshake on a loaded machine) counts as
	// unreachable.
	ctx, cancel := context.WithTimeout(s.closeCtx, max(s.cfg.HeartbeatTimeout, time.Second))
	defer cancel()
	answered := make([]bool, len(voters))
	var wg sync.WaitGroup
	for i, srv := range voters {
		if srv.ID == s.id {
			answered[i] = true
			continue
		}
		addr := string(srv.Address)
		if s.cfg.ResolveServer != nil {
			if a, ok := s.cfg.ResolveServer(dstate.NodeID(srv.ID)); ok && a != "" {
				addr = a
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.rpc.call(ctx, addr, []byte{reqStats})
			answered[i] = err == nil
		}()
	}
	wg.Wait()
	for i, ok := range answered {
		if ok {
			res.Reachable++
		} else {
			res.Unreachable = append(res.Unreachable, dstate.NodeID(voters[i].ID))
		}
	}
	slices.Sort(res.Unreachable)
	return res
}
