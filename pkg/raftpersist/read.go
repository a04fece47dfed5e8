package raftpersist

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/hashicorp/raft"
)

// Linearizable reads use a read index: the leader commits a barrier (so
// every save acknowledged before the read began is applied on the leader)
// and answers with its state machine's applied index; the reading node
// waits until its own state machine has applied that index and then reads
// locally. Concurrent reads on one node share one round trip: a round
// starts only after the reads it answers have arrived.

// readCoalescer groups concurrent read-index requests of one node.
type readCoalescer struct {
	mu      sync.Mutex
	waiting []readWaiter
	running bool
}

type readWaiter struct {
	ctx context.Context
	ch  chan readResult // buffered
}

type readResult struct {
	idx uint64
	err error
}

var (
	_ dstate.EnvelopeStore  = (*Store)(nil)
	_ dstate.EnvelopeReader = (*Store)(nil)
)

// LoadEnvelope returns the envelope stored for (state, node), or nil when
// none was saved; it implements dstate.EnvelopeStore. The read is
// linearizable: it reflects every save acknowledged before it was called,
// on any node. Errors are *dstate.PersistError of kind
// ErrStorageUnavailable; when no leader can be found the cause is a
// *QuorumError (ErrNoLeader, with ErrNoQuorum when fewer than a quorum of
// the voters answer), returned without waiting for ctx to end (see
// quorum.go).
func (s *Store) LoadEnvelope(ctx context.Context, state string, node dstate.NodeID) (*dstate.StoredEnvelope, error) {
	if err := s.linearize(ctx); err != nil {
		return nil, unavailable("load", err)
	}
	return s.fsm.get(state, node), nil
}

// LoadAllEnvelopes returns every node's envelope of state, sorted by node
// ID, with a linearizable read (see LoadEnvelope); it implements
// dstate.EnvelopeReader, the read behind node's Shard.QueryDurable.
func (s *Store) LoadAllEnvelopes(ctx context.Context, state string) ([]dstate.StoredEnvelope, error) {
	if err := s.linearize(ctx); err != nil {
		return nil, unavailable("load", err)
	}
	envs := s.fsm.all(state)
	out := make([]dstate.StoredEnvelope, len(envs))
	for i, e := range envs {
		out[i] = *e
	}
	return out, nil
}

// LoadLocal returns this node's applied copy of (state, node) without
// contacting the leader. It may be stale (it misses saves not yet
// replicated here); use it only where staleness is acceptable.
func (s *Store) LoadLocal(state string, node dstate.NodeID) *dstate.StoredEnvelope {
	return s.fsm.get(state, node)
}

// linearize waits until this node's state machine reflects every save
// acknowledged before the call.
func (s *Store) linearize(ctx context.Context) error {
	if s.isClosed() {
		return ErrClosed
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	idx, err := s.readIndex(ctx)
	if err != nil {
		return err
	}
	return s.waitApplied(ctx, idx)
}

// readIndex joins (or starts) a read round.
func (s *Store) readIndex(ctx context.Context) (uint64, error) {
	w := readWaiter{ctx: ctx, ch: make(chan readResult, 1)}
	rc := &s.reads
	rc.mu.Lock()
	rc.waiting = append(rc.waiting, w)
	start := !rc.running
	rc.running = true
	rc.mu.Unlock()
	if start && !s.goTracked(s.runReads) {
		return 0, ErrClosed
	}
	select {
	case r := <-w.ch:
		return r.idx, r.err
	case <-ctx.Done():
		return 0, s.ctxErr(ctx, "no read index", nil, false)
	}
}

// runReads serves read rounds until no reader waits.
func (s *Store) runReads() {
	rc := &s.reads
	for {
		rc.mu.Lock()
		batch := rc.waiting
		rc.waiting = nil
		if len(batch) == 0 {
			rc.running = false
			rc.mu.Unlock()
			return
		}
		rc.mu.Unlock()
		var deadline time.Time
		for _, w := range batch {
			if dl, ok := w.ctx.Deadline(); ok && dl.After(deadline) {
				deadline = dl
			}
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(s.cfg.ApplyTimeout)
		}
		ctx, cancel := context.WithDeadline(s.closeCtx, deadline)
		alive := func() bool {
			for _, w := range batch {
				if w.ctx.Err() == nil {
					return true
				}
			}
			return false
		}
		payload, _, err := s.leaderCall(ctx, func(remaining time.Duration) []byte {
			return binary.AppendUvarint([]byte{reqReadIndex}, ms(remaining))
		}, false, alive)
		cancel()
		var res readResult
		if err != nil {
			res.err = err
		} else {
			r := &reader{b: payload}
			res.idx = r.uvarint("read index")
			res.err = r.err
		}
		for _, w := range batch {
			w.ch <- res
		}
	}
}

// leaderReadIndex commits a barrier and returns the state machine's applied
// index; it runs on the leader.
func (s *Store) leaderReadIndex(ctx context.Context) (uint64, error) {
	timeout := s.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := waitFuture(ctx, s.raft.Barrier(timeout)); err != nil {
		return 0, err
	}
	idx, _ := s.fsm.appliedIndex()
	return idx, nil
}

// waitApplied waits until the local state machine has applied idx.
func (s *Store) waitApplied(ctx context.Context, idx uint64) error {
	for {
		applied, advance := s.fsm.appliedIndex()
		if applied >= idx {
			return nil
		}
		select {
		case <-advance:
		case <-ctx.Done():
			return s.ctxErr(ctx, "state machine did not catch up", nil, false)
		}
	}
}

func (s *Store) isLeader() bool { return s.raft.State() == raft.Leader }
