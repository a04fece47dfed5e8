package raftpersist

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dstate-go/dstate/internal/certid"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Probe checks that the server id at addr can be reached the way raft
// reaches it: it dials addr, runs the TLS handshake when the store has TLS
// (with client certificates, so a server that refuses this node's
// certificate fails the probe), checks that the server's certificate names
// id, asks for its statistics and checks that the answer comes from id. It
// returns nil when all of that succeeded within ctx (at most DialTimeout),
// or an error saying which step failed.
//
// A server that passes the probe has accepted this node's identity and
// answers on its raft port; one that fails it would be a voter nobody can
// talk to.
func (s *Store) Probe(ctx context.Context, id dstate.NodeID, addr string) error {
	if id == "" || addr == "" {
		return &ConfigError{Field: "Probe", Reason: "the server's ID and address must not be empty"}
	}
	if s.isClosed() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	timeout := s.cfg.DialTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	c, err := s.mux.dial(addr, protoForward, timeout)
	if err != nil {
		return fmt.Errorf("raftpersist: probe %s at %s: %w", id, addr, err)
	}
	defer c.Close()
	if t, ok := c.(*tls.Conn); ok {
		if reason := certid.Mismatch(t.ConnectionState(), string(id)); reason != "" {
			return fmt.Errorf("raftpersist: probe %s at %s: %s", id, addr, reason)
		}
	}
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := writeFrame(c, []byte{reqStats}); err != nil {
		return fmt.Errorf("raftpersist: probe %s at %s: %w", id, addr, err)
	}
	resp, err := readFrame(c, s.cfg.MaxFrameBytes)
	if err != nil {
		// With TLS 1.3 a server that refuses our certificate says so
		// only now, as an alert on the first read.
		return fmt.Errorf("raftpersist: probe %s at %s: no answer: %w", id, addr, err)
	}
	payload, err := parseResponse(addr, resp)
	if err != nil {
		return fmt.Errorf("raftpersist: probe %s at %s: %w", id, addr, err)
	}
	m, err := decodeStats(payload)
	if err != nil {
		return fmt.Errorf("raftpersist: probe %s at %s: %w", id, addr, err)
	}
	if got := m["node_id"]; got != string(id) {
		return fmt.Errorf("raftpersist: probe %s at %s: answered by node %q", id, addr, got)
	}
	return nil
}

// contacts is what the leader's replication saw of each follower's
// heartbeats: when a heartbeat last succeeded before the current run of
// failures, kept from the first failure until heartbeats resume.
type contacts struct {
	mu      sync.Mutex
	failing map[raft.ServerID]time.Time // zero: never reached
}

// watchContacts follows raft's heartbeat observations until the store
// closes.
func (s *Store) watchContacts() {
	s.contacts.failing = map[raft.ServerID]time.Time{}
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	s.raft.RegisterObserver(obs)
	s.goTracked(func() {
		defer s.raft.DeregisterObserver(obs)
		for {
			select {
			case <-s.closing:
				return
			case o := <-ch:
				s.contacts.mu.Lock()
				switch d := o.Data.(type) {
				case raft.FailedHeartbeatObservation:
					s.contacts.failing[d.PeerID] = d.LastContact
				case raft.ResumedHeartbeatObservation:
					delete(s.contacts.failing, d.PeerID)
				case raft.LeaderObservation:
					// A new term: the old leader's view is gone.
					clear(s.contacts.failing)
				}
				s.contacts.mu.Unlock()
			}
		}
	})
}

// failingSince returns, on the leader, when its heartbeats last reached
// server id before they started failing (zero when never), and whether they
// are failing now.
func (s *Store) failingSince(id raft.ServerID) (time.Time, bool) {
	if !s.isLeader() {
		return time.Time{}, false
	}
	s.contacts.mu.Lock()
	defer s.contacts.mu.Unlock()
	t, ok := s.contacts.failing[id]
	return t, ok
}
