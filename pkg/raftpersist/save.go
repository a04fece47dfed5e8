package raftpersist

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/dstate-go/dstate/internal/backoff"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// saveReq is one pending save.
type saveReq struct {
	ctx  context.Context
	env  *dstate.StoredEnvelope
	done chan saveOutcome // buffered: the committer never blocks
}

type saveOutcome struct {
	res saveResult
	err error
	// ambiguous: an earlier attempt of this save may have been applied, so
	// a fenced result may mean "applied, then superseded".
	ambiguous bool
}

// SaveEnvelope replicates env through the raft log and returns once it is
// committed and applied on the leader; it implements dstate.EnvelopeStore.
// On a follower the save is forwarded to the leader (retried across leader
// changes). Errors are *dstate.PersistError of kind ErrStorageUnavailable:
// with a *FencedError (ErrFenced) when a newer generation is stored, with
// ErrOutcomeUnknown when the save was sent but not acknowledged before ctx
// ended (also together with ErrFenced when a retried save found a newer
// generation: the first attempt may have been applied and superseded),
// with a *QuorumError (ErrNoLeader, and ErrNoQuorum when fewer than a
// quorum of the voters answer) when no leader could be reached, with
// ErrClosed after Close. A nil error is only returned for a committed
// save. The store keeps env.Data: the caller must not modify it afterwards.
func (s *Store) SaveEnvelope(ctx context.Context, env dstate.StoredEnvelope) error {
	if s.isClosed() {
		return unavailable("save", ErrClosed)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	req := &saveReq{ctx: ctx, env: &env, done: make(chan saveOutcome, 1)}
	if s.cfg.DisableGroupCommit {
		if !s.goTracked(func() { s.commitReqs([]*saveReq{req}) }) {
			return unavailable("save", ErrClosed)
		}
	} else {
		select {
		case s.saves <- req:
		case <-ctx.Done():
			return unavailable("save", s.ctxErr(ctx, "save not submitted", nil, false))
		}
	}
	var out saveOutcome
	select {
	case out = <-req.done:
	case <-ctx.Done():
		select {
		case out = <-req.done: // answered as ctx ended
		default:
			return unavailable("save", s.ctxErr(ctx, "save not acknowledged", nil, true))
		}
	}
	switch {
	case out.err != nil:
		return unavailable("save", out.err)
	case out.res.fenced:
		var cause error = &FencedError{State: env.State, Node: env.Node, Attempted: env.Generation, Stored: out.res.stored}
		if out.ambiguous {
			cause = fmt.Errorf("%w: an earlier attempt may have been applied and then superseded: %w", ErrOutcomeUnknown, cause)
		}
		return &dstate.PersistError{Kind: dstate.ErrStorageUnavailable, Op: "save", Stored: out.res.stored, Err: cause}
	}
	return nil
}

// ctxErr describes why an operation ended with ctx: closed store, or the
// deadline, naming the last attempt's error; unknown marks a save whose
// outcome cannot be known.
func (s *Store) ctxErr(ctx context.Context, what string, last error, unknown bool) error {
	if s.isClosed() {
		if unknown {
			return fmt.Errorf("raftpersist: %s before the store closed: %w: %w", what, ErrClosed, ErrOutcomeUnknown)
		}
		return ErrClosed
	}
	cause := ctx.Err()
	if cause == nil {
		cause = context.Canceled
	}
	if last == nil {
		last = cause
	}
	if unknown {
		return fmt.Errorf("raftpersist: %s before the context ended: %w: %w (last attempt: %v)", what, ErrOutcomeUnknown, cause, last)
	}
	var qe *QuorumError
	if errors.As(last, &qe) {
		return fmt.Errorf("raftpersist: %s before the context ended: %w: %w", what, qe, cause)
	}
	if errors.Is(last, ErrNoLeader) {
		return fmt.Errorf("raftpersist: %s before the context ended: %w: %w", what, ErrNoLeader, cause)
	}
	return fmt.Errorf("raftpersist: %s before the context ended: %w (last attempt: %v)", what, cause, last)
}

// batchWait is the longest a batch waits for the one in flight before it
// goes out alongside it (up to MaxInflight): far longer than a healthy
// commit, far shorter than the timeouts of a commit that cannot finish.
const batchWait = 20 * time.Millisecond

// batcher groups pending saves into batches and commits each on its own
// goroutine. A save arriving while no batch is in flight is committed at
// once, with every save already queued (up to MaxBatch and MaxBatchBytes):
// a lone saver never waits for company. While a batch is in flight, the
// saves arriving meanwhile wait for it and form the next batch; a batch
// goes out alongside the ones in flight (up to MaxInflight) only once it
// is full or has waited batchWait. One batch at a time lets all concurrent savers share one log
// entry instead of splitting into cohorts that alternate; pipelining full
// batches keeps the log busy under heavy load.
func (s *Store) batcher() {
	finished := make(chan struct{}, s.cfg.MaxInflight) // one per batch committed
	inflight := 0
	// A batch waits for the one in flight at most batchWait: a batch stuck
	// behind a leader that went away (its commit waits out a timeout)
	// must not hold back the saves that a new leader could take now.
	patience := time.NewTimer(batchWait)
	defer patience.Stop()
	for {
		var first *saveReq
		select {
		case first = <-s.saves:
		case <-finished:
			inflight--
			continue
		case <-s.closing:
			s.failQueued()
			return
		}
		batch := []*saveReq{first}
		size := envSize(first.env)
		full := func() bool { return len(batch) >= s.cfg.MaxBatch || size >= s.cfg.MaxBatchBytes }
		patience.Reset(batchWait)
		waited := false
		for inflight >= s.cfg.MaxInflight || (inflight > 0 && !full() && !waited) {
			more := s.saves
			if full() {
				more = nil
			}
			select {
			case r := <-more:
				batch = append(batch, r)
				size += envSize(r.env)
			case <-patience.C:
				waited = true
			case <-finished:
				inflight--
			case <-s.closing:
				for _, r := range batch {
					r.done <- saveOutcome{err: ErrClosed}
				}
				s.failQueued()
				return
			}
		}
		// The savers a batch just answered are runnable and about to save
		// again: letting them run first puts them in this batch rather
		// than the next. Without other runnable goroutines this returns at
		// once.
		for added := true; added && !full(); {
			runtime.Gosched()
			added = false
		fill:
			for !full() {
				select {
				case r := <-s.saves:
					batch = append(batch, r)
					size += envSize(r.env)
					added = true
				default:
					break fill
				}
			}
		}
		inflight++
		if !s.goTracked(func() {
			defer func() { finished <- struct{}{} }()
			s.commitReqs(batch)
		}) {
			for _, r := range batch {
				r.done <- saveOutcome{err: ErrClosed}
			}
			return
		}
	}
}

func envSize(e *dstate.StoredEnvelope) int { return len(e.Data) + len(e.State) + len(e.Node) + 48 }

// failQueued answers the saves still queued after Close.
func (s *Store) failQueued() {
	for {
		select {
		case r := <-s.saves:
			r.done <- saveOutcome{err: ErrClosed}
		default:
			return
		}
	}
}

// commitReqs commits one batch as one log entry and answers every request.
// Requests whose context already ended are dropped first; the batch is
// retried (on leader changes) until the last member's deadline.
func (s *Store) commitReqs(batch []*saveReq) {
	if s.beforeCommit != nil {
		s.beforeCommit()
	}
	live := batch[:0]
	var deadline time.Time
	for _, r := range batch {
		if r.ctx.Err() != nil {
			r.done <- saveOutcome{err: r.ctx.Err()}
			continue
		}
		live = append(live, r)
		if dl, _ := r.ctx.Deadline(); dl.After(deadline) {
			deadline = dl
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(s.closeCtx, deadline)
	defer cancel()
	alive := func() bool {
		for _, r := range live {
			if r.ctx.Err() == nil {
				return true
			}
		}
		return false
	}
	envs := make([]*dstate.StoredEnvelope, len(live))
	for i, r := range live {
		envs[i] = r.env
	}
	res, ambiguous, err := s.commit(ctx, envs, alive)
	for i, r := range live {
		if err != nil {
			r.done <- saveOutcome{err: err}
		} else {
			r.done <- saveOutcome{res: res[i], ambiguous: ambiguous}
		}
	}
}

// commit applies envs as one log entry on the leader. ambiguous reports
// that an earlier attempt may have been applied too.
func (s *Store) commit(ctx context.Context, envs []*dstate.StoredEnvelope, alive func() bool) (res []saveResult, ambiguous bool, err error) {
	cmd := encodeSaveCommand(envs)
	if len(cmd)+16 > s.cfg.MaxFrameBytes {
		return nil, false, fmt.Errorf("%w: save of %d bytes", ErrFrameTooLarge, len(cmd))
	}
	payload, ambiguous, err := s.leaderCall(ctx, func(remaining time.Duration) []byte {
		b := make([]byte, 0, len(cmd)+12)
		b = append(b, reqApply)
		b = binary.AppendUvarint(b, ms(remaining))
		return append(b, cmd...)
	}, true, alive)
	if err != nil {
		return nil, ambiguous, err
	}
	res, err = decodeApplyResults(payload, len(envs))
	return res, ambiguous, err
}

// leaderCall runs a request on the leader: served locally when this node
// leads, else forwarded. Not-leader and unavailable answers, transport
// errors and an unknown leader are retried with a short backoff until ctx
// ends or alive (when set) reports that nobody waits any more. mutating
// marks requests whose effect is unknown after a failed attempt; sent
// reports that a failed attempt may have taken effect.
func (s *Store) leaderCall(ctx context.Context, body func(remaining time.Duration) []byte, mutating bool, alive func() bool) (payload []byte, sent bool, err error) {
	retry := backoff.Backoff{Policy: backoff.Policy{Min: 2 * time.Millisecond,
		Max: min(max(s.cfg.HeartbeatTimeout/4, 5*time.Millisecond), 100*time.Millisecond)}}
	var last error
	var timer *time.Timer
	var noLeaderSince time.Time // when this call last found no leader (quorum.go)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if ctx.Err() != nil || (alive != nil && !alive()) {
			return nil, sent, s.ctxErr(ctx, "no answer from the leader", last, mutating && sent)
		}
		remaining := s.cfg.ApplyTimeout
		if dl, ok := ctx.Deadline(); ok {
			remaining = time.Until(dl)
		}
		if s.isLeader() {
			payload, err = parseResponse(string(s.addr), s.handleRequest(ctx, nil, body(remaining)))
		} else if addr, _ := s.raft.LeaderWithID(); addr != "" && addr != s.addr {
			payload, err = s.rpc.call(ctx, string(addr), body(remaining))
		} else {
			if noLeaderSince.IsZero() {
				noLeaderSince = time.Now()
			}
			err = ErrNoLeader
			if qe := s.noLeader(ctx); qe != nil {
				err = qe
				if qe.Voters == 0 || qe.Lost() || time.Since(noLeaderSince) >= s.leaderHold() {
					if mutating && sent {
						return nil, sent, fmt.Errorf("%w: an earlier attempt may have been applied: %w", ErrOutcomeUnknown, qe)
					}
					return nil, sent, qe
				}
			}
		}
		if err == nil {
			return payload, sent, nil
		}
		var re *remoteError
		switch {
		case errors.As(err, &re) && re.final():
			return nil, sent, err
		case errors.As(err, &re) && re.status == statusNotLeader:
			// Not applied.
		case errors.Is(err, ErrNoLeader):
		case errors.Is(err, ErrClosed):
			return nil, sent, ErrClosed
		default:
			sent = true
		}
		last = err
		if timer == nil {
			timer = time.NewTimer(retry.Next())
		} else {
			timer.Reset(retry.Next())
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
}
