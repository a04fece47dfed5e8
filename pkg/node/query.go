package node

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// pullWaiter is a blocking query waiting for stale peers to be refreshed.
type pullWaiter struct {
	peers    []dstate.NodeID
	maxStale time.Duration
	start    time.Time // a peer synced since then has answered
	done     chan struct{}
	gone     atomic.Bool // the query returned; drop the waiter
}

// Query calls fn with views no staler than maxStaleness when it can. If
// every peer's view is fresh it answers at once. Otherwise it asks the stale
// peers for snapshots (one request in flight per peer, shared by concurrent
// queries) and waits until they are fresh, the state's PullTimeout passes or
// ctx ends; then it calls fn with the views it has and returns a
// *dstate.QueryError (ErrStalePeer) naming the peers still stale, or
// ctx.Err() if ctx ended.
func (s *Shard[S, V]) Query(ctx context.Context, maxStaleness time.Duration, fn func(dstate.Views[V])) error {
	clock := s.n.clock
	views := s.eng.Views()
	stale := views.StalePeers(s.n.id, clock.Now(), maxStaleness)
	if len(stale) == 0 {
		fn(views)
		return nil
	}
	timeout := s.eng.Config().EffectivePullTimeout()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w := &pullWaiter{peers: stale, maxStale: maxStaleness, start: clock.Now(), done: make(chan struct{})}
	defer w.gone.Store(true)
	if s.post(func() {
		s.perform(s.eng.Pull(w.peers))
		s.waiters = append(s.waiters, w)
		s.checkWaiters()
	}) {
		select {
		case <-w.done:
		case <-wctx.Done():
		case <-s.closed:
		}
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
	var peers []dstate.StalePeer
	for _, id := range pendingPeers(w, views, clock.Now()) {
		reason := fmt.Sprintf("no snapshot within the pull timeout of %s", timeout)
		if v, ok := views.Get(id); ok && v.HasPending() && !v.Generation.IsZero() {
			reason = fmt.Sprintf("generation %s pending, holding %s", v.Pending, v.Generation)
		}
		peers = append(peers, dstate.StalePeer{Node: id, Reason: reason})
	}
	if len(peers) > 0 {
		return &dstate.QueryError{Kind: dstate.ErrStalePeer, State: s.name, Peers: peers}
	}
	return nil
}

// checkWaiters releases the queries whose peers are all fresh (or gone). It
// runs on the actor.
func (s *Shard[S, V]) checkWaiters() {
	if len(s.waiters) == 0 {
		return
	}
	views := s.eng.Views()
	now := s.n.clock.Now()
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if w.gone.Load() {
			continue
		}
		if len(pendingPeers(w, views, now)) > 0 {
			kept = append(kept, w)
		} else {
			close(w.done)
		}
	}
	clear(s.waiters[len(kept):])
	s.waiters = kept
}

// pendingPeers returns the peers a query pulled that are still stale and
// have not answered since it started; peers that left are not waited for.
func pendingPeers[V any](w *pullWaiter, views dstate.Views[V], now time.Time) []dstate.NodeID {
	var out []dstate.NodeID
	for _, id := range w.peers {
		v, ok := views.Get(id)
		if !ok {
			continue
		}
		fresh := !v.HasPending() && (w.maxStale < 0 || now.Sub(v.SyncedAt) <= w.maxStale || !v.SyncedAt.Before(w.start))
		if !fresh {
			out = append(out, id)
		}
	}
	return out
}
