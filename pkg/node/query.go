package node

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// pullWaiter is a blocking query waiting for stale peers to be refreshed.
type pullWaiter struct {
	maxStale time.Duration
	start    time.Time // a peer synced since then has answered
	// Set on the actor before ready is closed; read by the query after.
	peers  []dstate.NodeID    // the stale peers that are not failed: waited for
	failed []dstate.StalePeer // the stale peers that count as failed, with why
	until  time.Time          // when the requests to peers expire
	ready  chan struct{}
	done   chan struct{}
	gone   atomic.Bool // the query returned; drop the waiter
}

// Query calls fn with views no staler than maxStaleness when it can, and
// says which peers it could not refresh.
//
// If no view is stale it answers at once. Otherwise it tells the stale
// peers apart: a peer that counts as failed (the membership layer reported
// it failed, it answered no snapshot request within the state's
// PullTimeout and has not been heard from since, or there is no readable
// view of it; see dstate.Engine.FailedPeers) is neither pulled nor waited
// for. The other stale peers are asked for snapshots (one request in flight
// per peer, shared by concurrent queries) and waited for until they are
// fresh, their request expires (at most PullTimeout) or ctx ends. So a
// query whose only stale peers are failed answers at once.
//
// fn is then called with the views held, the last views of the peers not
// refreshed included. Query returns nil if every view was fresh; a
// *dstate.QueryError (ErrStalePeer) naming each peer still stale with the
// reason, whose Failed lists the failed ones (it then also matches
// dstate.ErrPeerFailed); or ctx.Err() if ctx ended.
func (s *Shard[S, V]) Query(ctx context.Context, maxStaleness time.Duration, fn func(dstate.Views[V])) error {
	clock := s.n.clock
	views := s.eng.Views()
	now := clock.Now()
	stale := views.StalePeers(s.n.id, now, maxStaleness)
	failed := s.eng.FailedPeers()
	if onlyFailed(stale, failed) {
		// Nothing to pull or wait for: answer from the views held.
		fn(views)
		return s.staleError(nil, failedNamed(failed, views, stale), 0)
	}
	timeout := s.eng.Config().EffectivePullTimeout()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w := &pullWaiter{maxStale: maxStaleness, start: now, ready: make(chan struct{}), done: make(chan struct{})}
	defer w.gone.Store(true)
	if s.post(func() {
		r := s.eng.PullQuery(maxStaleness)
		s.perform(r.Actions)
		w.peers, w.until = r.Waiting(), r.WaitUntil
		for _, f := range s.eng.FailedPeers() {
			if slices.Contains(r.Failed, f.Node) {
				w.failed = append(w.failed, f)
			}
		}
		close(w.ready)
		if w.gone.Load() {
			return
		}
		s.waiters = append(s.waiters, w)
		s.checkWaiters()
	}) {
		s.wait(wctx, w)
	}
	views = s.eng.Views()
	fn(views)
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.closed:
		return &dstate.QueryError{Kind: dstate.ErrActorStopped, State: s.name}
	default:
	}
	select {
	case <-w.ready:
	default:
		// The actor did not get to the query in time: every stale peer
		// that is not known to have failed is named as not refreshed.
		var waited []dstate.NodeID
		for _, id := range stale {
			if !listed(failed, id) {
				waited = append(waited, id)
			}
		}
		return s.staleError(waited, failedNamed(failed, views, stale), timeout)
	}
	now = clock.Now()
	// A peer waited for that was found failed meanwhile is named failed.
	failedNow := s.eng.FailedPeers()
	named := slices.Clone(w.failed)
	var waited []dstate.NodeID
	for _, id := range pendingPeers(w, views, now) {
		if i := slices.IndexFunc(failedNow, func(f dstate.StalePeer) bool { return f.Node == id }); i >= 0 {
			named = append(named, failedNow[i])
		} else {
			waited = append(waited, id)
		}
	}
	// A failed peer that came back and answered meanwhile is not named.
	named = slices.DeleteFunc(named, func(f dstate.StalePeer) bool {
		v, ok := views.Get(f.Node)
		if !ok || v.HasPending() {
			return false
		}
		at := views.SyncedAt(v)
		return maxStaleness < 0 || now.Sub(at) <= maxStaleness || !at.Before(w.start)
	})
	return s.staleError(waited, named, timeout)
}

// wait blocks until the waiter is released, its peers' requests expire,
// ctx ends or the shard stops.
func (s *Shard[S, V]) wait(ctx context.Context, w *pullWaiter) {
	select {
	case <-w.ready:
	case <-ctx.Done():
		return
	case <-s.closed:
		return
	}
	if w.until.IsZero() {
		return // nothing to wait for (the actor released the waiter)
	}
	t := time.NewTimer(max(w.until.Sub(s.n.clock.Now()), 0))
	defer t.Stop()
	select {
	case <-w.done:
	case <-t.C:
	case <-ctx.Done():
	case <-s.closed:
	}
}

// staleError returns the QueryError naming the waited-for peers still stale
// and the failed ones, or nil when there are none.
func (s *Shard[S, V]) staleError(waited []dstate.NodeID, failed []dstate.StalePeer, timeout time.Duration) error {
	if len(waited) == 0 && len(failed) == 0 {
		return nil
	}
	views := s.eng.Views()
	peers := make([]dstate.StalePeer, 0, len(waited)+len(failed))
	for _, id := range waited {
		reason := fmt.Sprintf("no snapshot within the pull timeout of %s", timeout)
		if v, ok := views.Get(id); ok && v.HasPending() && !v.Generation.IsZero() {
			reason = fmt.Sprintf("generation %s pending, holding %s", v.Pending, v.Generation)
		}
		peers = append(peers, dstate.StalePeer{Node: id, Reason: reason})
	}
	ids := make([]dstate.NodeID, 0, len(failed))
	for _, f := range failed {
		if !slices.Contains(ids, f.Node) {
			peers = append(peers, dstate.StalePeer{Node: f.Node, Reason: "failed: " + f.Reason})
			ids = append(ids, f.Node)
		}
	}
	slices.SortFunc(peers, func(a, b dstate.StalePeer) int {
		switch {
		case a.Node < b.Node:
			return -1
		case a.Node > b.Node:
			return 1
		}
		return 0
	})
	slices.Sort(ids)
	return &dstate.QueryError{Kind: dstate.ErrStalePeer, State: s.name, Peers: peers, Failed: ids}
}

// onlyFailed reports whether every stale peer counts as failed, so that a
// query has nothing to pull or wait for.
func onlyFailed(stale []dstate.NodeID, failed []dstate.StalePeer) bool {
	for _, id := range stale {
		if !listed(failed, id) {
			return false
		}
	}
	return true
}

// failedNamed returns the failed peers a query names: those whose view is
// stale, and those without a view.
func failedNamed[V any](failed []dstate.StalePeer, views dstate.Views[V], stale []dstate.NodeID) []dstate.StalePeer {
	var out []dstate.StalePeer
	for _, f := range failed {
		if _, ok := views.Get(f.Node); !ok || slices.Contains(stale, f.Node) {
			out = append(out, f)
		}
	}
	return out
}

func listed(failed []dstate.StalePeer, id dstate.NodeID) bool {
	for _, f := range failed {
		if f.Node == id {
			return true
		}
	}
	return false
}

// checkWaiters releases the queries whose peers are all fresh, gone or
// failed. It runs on the actor.
func (s *Shard[S, V]) checkWaiters() {
	if len(s.waiters) == 0 {
		return
	}
	views := s.eng.Views()
	now := s.n.clock.Now()
	failed := s.eng.FailedPeers()
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if w.gone.Load() {
			continue
		}
		waiting := false
		for _, id := range pendingPeers(w, views, now) {
			if !listed(failed, id) {
				waiting = true
				break
			}
		}
		if waiting {
			kept = append(kept, w)
		} else {
			close(w.done)
		}
	}
	clear(s.waiters[len(kept):])
	s.waiters = kept
}

// pendingPeers returns the peers a query waits for that are still stale and
// have not answered since it started; peers that left are not waited for.
func pendingPeers[V any](w *pullWaiter, views dstate.Views[V], now time.Time) []dstate.NodeID {
	var out []dstate.NodeID
	for _, id := range w.peers {
		v, ok := views.Get(id)
		if !ok {
			continue
		}
		if v.HasPending() {
			out = append(out, id)
			continue
		}
		if at := views.SyncedAt(v); w.maxStale >= 0 && now.Sub(at) > w.maxStale && at.Before(w.start) {
			out = append(out, id)
		}
	}
	return out
}
