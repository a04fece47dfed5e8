package raftpersist

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/hashicorp/raft"
)

// Leader returns the current leader's ID and address as this node knows
// them, or empty strings when no leader is known.
func (s *Store) Leader() (dstate.NodeID, string) {
	addr, id := s.raft.LeaderWithID()
	return dstate.NodeID(id), string(addr)
}

// IsLeader reports whether this node is the leader.
func (s *Store) IsLeader() bool { return s.isLeader() }

// LeaderCh returns raft's leadership channel: true when this node becomes
// leader, false when it stops (see raft.Raft.LeaderCh for its caveats).
func (s *Store) LeaderCh() <-chan bool { return s.raft.LeaderCh() }

// WaitLeader waits until a leader is known and returns it.
func (s *Store) WaitLeader(ctx context.Context) (dstate.NodeID, string, error) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if id, addr := s.Leader(); id != "" {
			return id, addr, nil
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return "", "", fmt.Errorf("raftpersist: wait for a leader: %w: %w", ErrNoLeader, ctx.Err())
		case <-s.closing:
			return "", "", ErrClosed
		}
	}
}

// AddVoter adds (or updates the address of) a voting server. It runs on
// the leader; a follower forwards it.
func (s *Store) AddVoter(ctx context.Context, id dstate.NodeID, addr string) error {
	return s.membership(ctx, memberAddVoter, id, addr)
}

// AddNonvoter adds a server that replicates the log without voting.
func (s *Store) AddNonvoter(ctx context.Context, id dstate.NodeID, addr string) error {
	return s.membership(ctx, memberAddNonvoter, id, addr)
}

// RemoveServer removes a server from the configuration. Its envelopes stay
// in the state machine (a replaced node's saves remain loadable).
func (s *Store) RemoveServer(ctx context.Context, id dstate.NodeID) error {
	return s.membership(ctx, memberRemove, id, "")
}

func (s *Store) membership(ctx context.Context, kind byte, id dstate.NodeID, addr string) error {
	if id == "" {
		return &ConfigError{Field: "id", Reason: "must not be empty"}
	}
	if s.isClosed() {
		return ErrClosed
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	_, _, err := s.leaderCall(ctx, func(remaining time.Duration) []byte {
		b := []byte{reqMembership, kind}
		b = appendString(b, string(id))
		b = appendString(b, addr)
		return binary.AppendUvarint(b, ms(remaining))
	}, false, nil)
	if err != nil {
		return fmt.Errorf("raftpersist: membership change of %q: %w", id, err)
	}
	return nil
}

// Servers returns the latest raft configuration known to this node.
func (s *Store) Servers() ([]Server, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raftpersist: get configuration: %w", err)
	}
	var out []Server
	for _, srv := range f.Configuration().Servers {
		out = append(out, Server{ID: dstate.NodeID(srv.ID), Address: string(srv.Address), Nonvoter: srv.Suffrage != raft.Voter})
	}
	return out, nil
}

// Snapshot makes raft snapshot the state machine and compact its log now.
// With nothing new since the last snapshot it returns an error matching
// raft.ErrNothingNewToSnapshot.
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("raftpersist: snapshot: %w", err)
	}
	return nil
}

// PeerStats is one server's replication status, as reported by the server
// itself (from raft.Stats) and compared with the leader.
type PeerStats struct {
	ID       dstate.NodeID
	Address  string
	Suffrage string // "Voter", "Nonvoter" or "Staging"
	// Err says why the server could not be asked ("" when it answered).
	Err string

	State             string // "Leader", "Follower", "Candidate", "Shutdown"
	Term              uint64
	LastLogIndex      uint64
	CommitIndex       uint64
	AppliedIndex      uint64
	LastSnapshotIndex uint64
	// LastContact is the time since the server last heard from a leader
	// (0 on the leader, -1 when never). For a server that could not be
	// asked (Err set) it is, when this node leads, the time since its
	// heartbeats last reached the server, and -1 when unknown or never.
	LastContact time.Duration
	// Trailing is how many log entries the server's log is behind the
	// leader's last index (0 for the leader or when unknown).
	Trailing uint64
	// Entries is the number of envelopes in the server's state machine and
	// Restores how many snapshots it has restored since it started.
	Entries  int
	Restores int64
}

// ClusterStats is the replication status of every server in the
// configuration.
type ClusterStats struct {
	Leader        dstate.NodeID
	LeaderAddress string
	Peers         []PeerStats
}

// Stats asks every server in the configuration for its raft statistics
// (each server has until ctx ends, at most DialTimeout) and computes how
// far each trails the leader.
func (s *Store) Stats(ctx context.Context) (ClusterStats, error) {
	cf := s.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return ClusterStats{}, fmt.Errorf("raftpersist: get configuration: %w", err)
	}
	servers := cf.Configuration().Servers
	leader, laddr := s.Leader()
	cs := ClusterStats{Leader: leader, LeaderAddress: laddr, Peers: make([]PeerStats, len(servers))}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, srv := range servers {
		p := &cs.Peers[i]
		p.ID, p.Address, p.Suffrage = dstate.NodeID(srv.ID), string(srv.Address), srv.Suffrage.String()
		if srv.ID == s.id {
			p.fill(s.localStats())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload, err := s.rpc.call(ctx, p.Address, []byte{reqStats})
			if err != nil {
				p.Err = err.Error()
				p.LastContact = -1
				if t, failing := s.failingSince(srv.ID); failing && !t.IsZero() {
					p.LastContact = time.Since(t)
				}
				return
			}
			m, err := decodeStats(payload)
			if err != nil {
				p.Err, p.LastContact = err.Error(), -1
				return
			}
			p.fill(m)
		}()
	}
	wg.Wait()
	var leaderLast uint64
	for _, p := range cs.Peers {
		if p.ID == leader && p.Err == "" {
			leaderLast = p.LastLogIndex
		}
	}
	for i := range cs.Peers {
		p := &cs.Peers[i]
		if p.Err == "" && leaderLast > p.LastLogIndex {
			p.Trailing = leaderLast - p.LastLogIndex
		}
	}
	sort.Slice(cs.Peers, func(i, j int) bool { return cs.Peers[i].ID < cs.Peers[j].ID })
	return cs, nil
}

func (p *PeerStats) fill(m map[string]string) {
	u := func(k string) uint64 { v, _ := strconv.ParseUint(m[k], 10, 64); return v }
	p.State = m["state"]
	p.Term = u("term")
	p.LastLogIndex = u("last_log_index")
	p.CommitIndex = u("commit_index")
	p.AppliedIndex = u("applied_index")
	p.LastSnapshotIndex = u("last_snapshot_index")
	p.Entries = int(u("fsm_entries"))
	p.Restores = int64(u("fsm_restores"))
	switch lc := m["last_contact"]; lc {
	case "never":
		p.LastContact = -1
	case "0", "":
		p.LastContact = 0
	default:
		d, err := time.ParseDuration(lc)
		if err != nil {
			d = -1
		}
		p.LastContact = d
	}
}

// localStats is raft.Stats plus the state machine's counters.
func (s *Store) localStats() map[string]string {
	m := s.raft.Stats()
	m["node_id"] = string(s.cfg.NodeID)
	m["fsm_entries"] = strconv.Itoa(s.fsm.len())
	applied, _ := s.fsm.appliedIndex()
	m["fsm_applied"] = strconv.FormatUint(applied, 10)
	m["fsm_restores"] = strconv.FormatInt(s.fsm.restores.Load(), 10)
	return m
}

func encodeStats(m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b := []byte{statusOK}
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, m[k])
	}
	return b
}

func decodeStats(payload []byte) (map[string]string, error) {
	r := &reader{b: payload}
	n := r.count("stats count", 2)
	m := make(map[string]string, n)
	for i := 0; i < n && r.err == nil; i++ {
		k := r.string("stat name")
		m[k] = r.string("stat value")
	}
	if r.err != nil {
		return nil, errors.Join(errors.New("raftpersist: decode stats"), r.err)
	}
	return m, nil
}
