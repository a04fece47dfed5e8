package dstate

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Failure-aware reads
//
// A peer counts as failed, for queries and health alike, when
//
//   - the membership layer reported it failed (OnNodeFailed) and nothing has
//     been heard from it since;
//   - it is unresponsive: a snapshot request to it went unanswered for a
//     whole pull timeout, and nothing has been heard from it since; or
//   - there is no readable view of it although it has a failure record (a
//     DropAndWait version mismatch dropped the view).
//
// A failed peer is never pulled on behalf of a query (an unresponsive one
// is asked again at most once per pull timeout, so that it can answer) and
// a query never waits for it: its last view stays readable and the query
// names it. Any message from the peer clears the failed and unresponsive
// marks; a peer that comes back after a membership failure (a message from
// it, or a join) has its view marked stale until a snapshot or the next
// delta says where it stands, as it may have restarted.

// FailedPeers returns, sorted by node, the peers that count as failed and
// why (see [PeerStatus.Failed]). It is safe from any goroutine and does not
// allocate; the caller must not modify the returned slice. A peer whose
// snapshot request has just expired is added by the next Query, PullQuery
// or Health call.
func (e *Engine[S, V]) FailedPeers() []StalePeer {
	if p := e.failedList.Load(); p != nil {
		return *p
	}
	return nil
}

// failedReason says why the peer of record p counts as failed, or "" when it
// does not. hasView: the peer has a view.
func (e *Engine[S, V]) failedReason(id NodeID, p *peerState, hasView bool) string {
	switch {
	case p == nil:
		return ""
	case p.failed():
		return "membership reports it failed"
	case !hasView && p.failing():
		return "no readable view: " + e.peerErrs[id].msg
	case p.unresponsive():
		return fmt.Sprintf("answered no snapshot request within the pull timeout of %s", e.pullPeriod)
	}
	return ""
}

// detectUnresponsive marks p unresponsive when its snapshot request has been
// outstanding for a whole pull timeout with nothing heard from the peer
// since (a snapshot clears the request; a delta counts as an answer). It
// reports whether the mark was set now.
func (e *Engine[S, V]) detectUnresponsive(id NodeID, p *peerState, now time.Time) bool {
	if p == nil || p.unresponsive() || !p.pulling() {
		return false
	}
	if at := e.pulls[id].at; e.lastAttempt(id, p) >= at || now.Sub(e.instant(at)) < e.pullPeriod {
		return false
	}
	p.flags |= peerUnresponsive
	return true
}

// publishFailed recomputes the list FailedPeers returns. It runs on every
// change of a failed or unresponsive mark, which are rare.
func (e *Engine[S, V]) publishFailed() {
	var out []StalePeer
	for id := range e.views.load() {
		if id == e.self {
			continue
		}
		if r := e.failedReason(id, e.peerOf(id), true); r != "" {
			out = append(out, StalePeer{Node: id, Reason: r})
		}
	}
	for id, p := range e.orphans {
		if e.views.slot(id) != nil {
			continue
		}
		if r := e.failedReason(id, p, false); r != "" {
			out = append(out, StalePeer{Node: id, Reason: r})
		}
	}
	slices.SortFunc(out, func(a, b StalePeer) int { return strings.Compare(string(a.Node), string(b.Node)) })
	e.anyFailed = len(out) > 0
	e.failedList.Store(&out)
}

// markFailed records that the membership layer reported node failed.
func (e *Engine[S, V]) markFailed(node NodeID) {
	p := e.peer(node)
	if !p.failed() {
		p.flags |= peerFailed
		e.publishFailed()
	}
}

// listedFailed reports whether node is in the published failed list.
func (e *Engine[S, V]) listedFailed(node NodeID) bool {
	for _, f := range e.FailedPeers() {
		if f.Node == node {
			return true
		}
	}
	return false
}

// heardFrom clears the failed and unresponsive marks of a peer that sent a
// message (see revive). Only called while some peer is listed failed.
func (e *Engine[S, V]) heardFrom(node NodeID) {
	if node == e.self || node == "" || !e.listedFailed(node) {
		return
	}
	if p := e.peerOf(node); p != nil && p.flags&(peerFailed|peerUnresponsive) != 0 {
		e.revive(node, p)
	}
}

// revive clears p's failed and unresponsive marks. A peer back from a
// membership failure may have restarted, or missed changes while it was
// cut off: the view of its previous life is marked stale (the placeholder
// pending generation, which any snapshot or the next delta clears) until
// it says where it stands.
func (e *Engine[S, V]) revive(node NodeID, p *peerState) {
	if p.failed() {
		if cur := e.views.get(node); cur != nil && !cur.Generation.IsZero() && cur.Pending.IsZero() {
			v := e.newView()
			*v = *cur
			v.Pending = placeholderPending
			e.views.put(node, v)
		}
	}
	p.flags &^= peerFailed | peerUnresponsive
	e.publishFailed()
}

// clearFailures resets the failure count of id's record p, dropping the
// last error kept aside while there were failures.
func (e *Engine[S, V]) clearFailures(id NodeID, p *peerState) {
	if p.failing() {
		p.flags &^= peerFailing
		delete(e.peerErrs, id)
	}
}

// forgetFailed drops node from the failed list once its record is gone,
// and what the side maps held for the record (its failures and last error,
// its outstanding snapshot request, the overflow of its gap count, the
// time of its last update while it has no view).
func (e *Engine[S, V]) forgetFailed(node NodeID) {
	delete(e.peerErrs, node)
	delete(e.pulls, node)
	delete(e.gapsOver, node)
	delete(e.syncAside, node)
	delete(e.attempts, node)
	if e.listedFailed(node) {
		e.publishFailed()
	}
}

// QueryResult says whether the views a query read were fresh.
type QueryResult struct {
	// Stale lists, sorted, the peers whose views were stale (a newer
	// generation pending, synced longer ago than the query allows, or no
	// readable view of a peer with a failure record); empty means the
	// result was Fresh.
	Stale []NodeID
	// Failed lists, sorted, those of Stale that count as failed (see
	// [Engine.FailedPeers]): they are not pulled (an unresponsive one is
	// asked again at most once per pull timeout) and hosts do not wait for
	// them. A failed peer whose view is still fresh is not named.
	Failed []NodeID
	// Actions are snapshot requests to the stale peers that are not
	// failed (with PullOnQuery, or always for PullQuery).
	Actions []Action
	// WaitUntil is when the snapshot requests outstanding to the stale
	// peers that are not failed expire: a host that waits for their
	// answers waits no longer, since a peer that has not answered by then
	// counts as failed (unresponsive). Zero when there is no such peer.
	WaitUntil time.Time
}

// Fresh reports whether no peer was stale.
func (r QueryResult) Fresh() bool { return len(r.Stale) == 0 }

// Waiting returns the peers of Stale that are not Failed: those a host
// waits for.
func (r QueryResult) Waiting() []NodeID {
	var out []NodeID
	for _, id := range r.Stale {
		if !slices.Contains(r.Failed, id) {
			out = append(out, id)
		}
	}
	return out
}

// Query checks the freshness of every peer's view against maxStaleness (a
// peer is stale when a newer generation is pending or its view was synced
// more than maxStaleness ago; negative disables the age check), tells the
// failed peers apart, and, with PullOnQuery, returns snapshot requests to
// the stale peers that are not failed. The caller computes its result over
// Views() either way; Query never waits.
func (e *Engine[S, V]) Query(maxStaleness time.Duration) QueryResult {
	return e.query(maxStaleness, e.cfg.SyncStrategy.PullOnQuery)
}

// PullQuery is Query for hosts whose queries wait for the stale peers: it
// requests snapshots from the stale peers that are not failed whatever the
// strategy (not repeating a request outstanding within the pull timeout),
// and says until when to wait for them (QueryResult.WaitUntil).
func (e *Engine[S, V]) PullQuery(maxStaleness time.Duration) QueryResult {
	return e.query(maxStaleness, true)
}

func (e *Engine[S, V]) query(maxStaleness time.Duration, pull bool) QueryResult {
	e.acts = e.acts[:0]
	now := e.clock.Now()
	nowNs := e.since(now)
	var r QueryResult
	changed := false
	for id, s := range e.views.load() {
		if id == e.self || !isStale(s.Load(), nowNs, maxStaleness) {
			continue
		}
		r.Stale = append(r.Stale, id)
		p := e.peerOf(id)
		if e.detectUnresponsive(id, p, now) {
			changed = true
		}
		if e.failedReason(id, p, true) != "" {
			r.Failed = append(r.Failed, id)
		}
	}
	if e.anyFailed { // a peer without a view and a failure record is listed failed
		for id, p := range e.orphans {
			if e.views.slot(id) == nil && e.failedReason(id, p, false) != "" {
				r.Stale = append(r.Stale, id)
				r.Failed = append(r.Failed, id)
			}
		}
	}
	if changed {
		e.publishFailed()
	}
	slices.Sort(r.Stale)
	slices.Sort(r.Failed)
	for _, id := range r.Stale {
		p := e.peerOf(id)
		failed := slices.Contains(r.Failed, id)
		if pull && (!failed || (p.unresponsive() && !p.failed() && e.views.slot(id) != nil)) {
			e.requestSnapshot(id, now)
			p = e.peerOf(id) // the record may have moved into the view's slot
		}
		if !failed && p != nil && p.pulling() {
			if until := e.instant(e.pulls[id].at).Add(e.pullPeriod); until.After(r.WaitUntil) {
				r.WaitUntil = until
			}
		}
	}
	r.Actions = e.acts
	return r
}

// Pull returns a snapshot request to each of the given peers (other than
// self, departed ones and those the membership layer reported failed)
// regardless of the strategy. Requests already outstanding within the pull
// timeout are not repeated. Hosts that wait for the answers use PullQuery,
// which also tells failed peers apart.
func (e *Engine[S, V]) Pull(peers []NodeID) []Action {
	e.acts = e.acts[:0]
	now := e.clock.Now()
	for _, id := range peers {
		if id == e.self || e.IsDeparted(id) {
			continue
		}
		if p := e.peerOf(id); p != nil && p.failed() {
			continue
		}
		e.requestSnapshot(id, now)
	}
	return e.acts
}

// Health summarizes the peers' freshness and failures at maxStaleness, with
// the classification of Query: a peer is stale when Query would name it
// (its view is stale, or there is no readable view of it), failing when it
// has consecutive sync failures or counts as failed, and healthy when
// neither. Peers without a view are counted when they have a failure
// record.
func (e *Engine[S, V]) Health(maxStaleness time.Duration) EngineHealth {
	h := EngineHealth{State: e.name}
	now := e.clock.Now()
	nowNs := e.since(now)
	total, changed := 0, false
	count := func(id NodeID, p *peerState, stale, hasView bool) {
		total++
		failing := p != nil && (p.failing() || e.failedReason(id, p, hasView) != "")
		if stale {
			h.StalePeers++
		}
		if failing {
			h.FailingPeers++
		}
		if !stale && !failing {
			h.HealthyPeers++
		}
	}
	for id, s := range e.views.load() {
		if id == e.self {
			continue
		}
		p := e.peerOf(id)
		if e.detectUnresponsive(id, p, now) {
			changed = true
		}
		count(id, p, isStale(s.Load(), nowNs, maxStaleness), true)
	}
	if e.anyFailed { // a peer without a view and a failure record is listed failed
		for id, p := range e.orphans {
			if e.views.slot(id) == nil && e.failedReason(id, p, false) != "" {
				count(id, p, true, false)
			}
		}
	}
	if changed {
		e.publishFailed()
	}
	switch {
	case h.StalePeers == 0 && h.FailingPeers == 0:
		h.Status = Healthy
	case h.HealthyPeers*2 > total:
		h.Status = Degraded
	default:
		h.Status = Unhealthy
	}
	return h
}

// PeerStatuses returns the sync status of every peer with a view, and of
// every peer without one that has a failure record (its Generation is
// zero), sorted by node.
func (e *Engine[S, V]) PeerStatuses() []PeerStatus {
	views := e.Views()
	var out []PeerStatus
	status := func(id NodeID, p *peerState, hasView bool) PeerStatus {
		st := PeerStatus{Node: id}
		if p != nil {
			st.LastSync, st.LastAttempt = e.instant(e.lastSync(id, p)), e.instant(e.lastAttempt(id, p))
			st.LastLatency, st.Gaps = time.Duration(p.latencyMs)*time.Millisecond, uint64(p.gaps)+e.gapsOver[id]
			if p.failing() {
				pe := e.peerErrs[id]
				st.ConsecutiveFailures, st.LastError = pe.n, pe.msg
			}
			st.Failed = e.failedReason(id, p, hasView)
		}
		return st
	}
	for _, id := range views.Nodes() {
		if id == e.self {
			continue
		}
		v, _ := views.Get(id)
		st := status(id, e.peerOf(id), true)
		st.Generation, st.Pending = v.Generation, v.Pending
		out = append(out, st)
	}
	for id, p := range e.orphans {
		if views.slot(id) == nil && e.failedReason(id, p, false) != "" {
			out = append(out, status(id, p, false))
		}
	}
	slices.SortFunc(out, func(a, b PeerStatus) int { return strings.Compare(string(a.Node), string(b.Node)) })
	return out
}
