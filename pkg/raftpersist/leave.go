package raftpersist

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Leaving the configuration and coming back on other addresses.
//
// A server that stops for good must leave the raft configuration before it
// goes, or the cluster keeps counting its vote: stopping two servers of
// three back to back then leaves the third without a quorum. [Store.Leave]
// takes the server out (handing leadership over first when it leads) and
// returns only once it is out, so that the next server may stop at once.
//
// A cluster whose servers all stop and start again holds a configuration
// naming their old raft addresses. When the servers come back on other
// addresses (a new host, a new pod IP), Config.ResolveServer gives raft the
// current address of each server of the configuration by its ID (the agent
// reads it from the gossip members' raft tags), so the servers reach each
// other, elect a leader, and the leader then writes the new addresses into
// the configuration (the agent's reconciliation does, through
// [Store.AddVoter]). Only servers already in the configuration are dialed
// this way: raft asks only for the IDs its configuration names, and the
// configuration itself changes only through a committed entry of an elected
// leader. The address a resolver returns is trusted as the gossip layer is
// (see authorize.go): without mutual TLS and a gossip key, whoever can join
// the gossip layer can claim a server's address.

// LeaveResult says how [Store.Leave] took the server out.
type LeaveResult struct {
	// Transferred is true when this server led and handed leadership to
	// another voter first.
	Transferred bool
	// Removed is true when the server was in the configuration and is no
	// longer (false when it was not in it to begin with).
	Removed bool
	// Took is how long Leave took.
	Took time.Duration
}

// Leave takes this server out of the raft configuration and returns once
// it is out: when it leads it first hands leadership to the most
// up-to-date voter (raft's leadership transfer; when that fails the leader
// removes itself, which also ends its leadership), then it asks the leader
// to remove it and waits until the removal is committed or its own latest
// configuration no longer names it (the leader's reconciliation may remove
// it first). A server not in the configuration has nothing to do.
//
// It fails with an error matching [ErrLastVoter] when this server is the
// only voter (removing it would leave a configuration nobody can change;
// it keeps the cluster's state, and starting it again brings the cluster
// back), and otherwise with the reason the cluster could not remove it
// when ctx ends first (no leader, no quorum to commit the removal). A
// ctx without a deadline is bounded by Config.ApplyTimeout. Leave does
// not close the store.
func (s *Store) Leave(ctx context.Context) (LeaveResult, error) {
	start := time.Now()
	var res LeaveResult
	if s.isClosed() {
		return res, ErrClosed
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	servers, err := s.Servers()
	if err != nil {
		return res, fmt.Errorf("raftpersist: leave: %w", err)
	}
	self, in := findServer(servers, s.cfg.NodeID)
	if !in {
		res.Took = time.Since(start)
		return res, nil
	}
	others := 0
	for _, srv := range servers {
		if srv.ID != s.cfg.NodeID && !srv.Nonvoter {
			others++
		}
	}
	if !self.Nonvoter && others == 0 {
		return res, fmt.Errorf("%w: %q is the only voter of the raft configuration (%d servers): it keeps the cluster's state; start it again to bring the cluster back",
			ErrLastVoter, s.cfg.NodeID, len(servers))
	}
	if !self.Nonvoter && s.isLeader() {
		if err := waitFuture(ctx, s.raft.LeadershipTransfer()); err != nil {
			s.log.Warn("leadership transfer before leaving failed; the leader removes itself", "err", err)
		} else {
			res.Transferred = true
			s.log.Info("handed leadership over before leaving")
		}
	}
	if err := s.awaitRemoval(ctx); err != nil {
		return res, fmt.Errorf("raftpersist: leave: %q is still in the raft configuration of %d servers (%d other voters) after %s: %w",
			s.cfg.NodeID, len(servers), others, time.Since(start).Round(time.Millisecond), err)
	}
	res.Removed, res.Took = true, time.Since(start)
	s.log.Info("left the raft configuration", "took", res.Took)
	return res, nil
}

// awaitRemoval asks the leader to remove this server (retrying through
// leader changes) until the removal is committed or this server's latest
// configuration no longer names it, or ctx ends.
func (s *Store) awaitRemoval(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.membership(ctx, memberRemove, s.cfg.NodeID, "") }()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		select {
		case err := <-done:
			if err == nil {
				return nil
			}
			// A refusal (not a voter any more) or a lost answer: this
			// server may be out already; its own configuration says so
			// once the leader has replicated the removal to it.
			last, done = err, nil
		case <-t.C:
		case <-ctx.Done():
			if out, _ := s.outOfConfiguration(); out {
				return nil
			}
			return s.leaveBlocked(ctx, last)
		}
		if out, err := s.outOfConfiguration(); err == nil && out {
			return nil
		} else if errors.Is(err, raft.ErrRaftShutdown) {
			// A leader that removed itself shuts raft down (raft's
			// ShutdownOnRemove) once the removal is committed; its call
			// answers nil, so only a failure lands here.
			if last == nil {
				last = err
			}
		}
		if done == nil && last != nil && !errors.Is(last, ErrForbidden) && ctx.Err() == nil {
			// Ask again: the leader may have changed or lost its quorum
			// for a while.
			done = make(chan error, 1)
			go func() { done <- s.membership(ctx, memberRemove, s.cfg.NodeID, "") }()
		}
	}
}

// leaveBlocked says why the removal did not happen before ctx ended: no
// leader, or a leader that could not commit it (no quorum).
func (s *Store) leaveBlocked(ctx context.Context, last error) error {
	cause := ctx.Err()
	if last != nil && !errors.Is(last, context.DeadlineExceeded) && !errors.Is(last, context.Canceled) {
		cause = last
	}
	id, _ := s.Leader()
	switch {
	case id == "":
		return fmt.Errorf("%w (no quorum of the voters reachable?): %w", ErrNoLeader, cause)
	case id == s.cfg.NodeID:
		return fmt.Errorf("this server leads but could not commit the removal (no quorum of the voters reachable?): %w", cause)
	default:
		return fmt.Errorf("the leader %q did not commit the removal (no quorum of the voters reachable?): %w", id, cause)
	}
}

// outOfConfiguration reports whether this server's latest configuration
// no longer names it.
func (s *Store) outOfConfiguration() (bool, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return false, err
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == s.id {
			return false, nil
		}
	}
	return true, nil
}

func findServer(servers []Server, id dstate.NodeID) (Server, bool) {
	for _, srv := range servers {
		if srv.ID == id {
			return srv, true
		}
	}
	return Server{}, false
}

// addressResolver gives raft's transport the current address of a server
// of the configuration (Config.ResolveServer), falling back to the
// configuration's address when it knows none.
type addressResolver struct {
	resolve func(dstate.NodeID) (string, bool)
}

var _ raft.ServerAddressProvider = addressResolver{}

// ServerAddr returns the resolved address of id, or an error that makes
// raft dial the address in its configuration.
func (r addressResolver) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if addr, ok := r.resolve(dstate.NodeID(id)); ok && addr != "" {
		return raft.ServerAddress(addr), nil
	}
	return "", fmt.Errorf("raftpersist: no current address known for server %q", id)
}
