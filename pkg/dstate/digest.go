package dstate

import (
	"cmp"
	"slices"
	"strings"
)

// Digest anti-entropy
//
// Deltas, notices and their snapshot requests can be lost: to a full peer
// queue, a broken connection or a partition. When nothing is written
// afterwards, no later delta reveals the gap. The repair is a digest: each
// node periodically sends every peer one small message (KindDigest) with
// the generation of every state it owns, and at once when its link to the
// peer comes back, when the peer is reported alive again, or when frames
// to the peer had to be dropped. A receiver compares each entry with the
// view it holds of the sender:
//
//   - the same generation: the view is confirmed, and its freshness renewed
//     (as a snapshot of the generation held would);
//   - a newer generation: the view is behind. An ActivePush state pulls it
//     at once (one RequestSnapshot, not repeated while it is outstanding
//     within the pull timeout); a state that does not push eagerly
//     (ActiveFeedLazyPull, PushNone) marks the view stale with the newer
//     generation pending, as a change notice would, and pulls on query;
//   - an older generation: the digest was overtaken by newer data and is
//     ignored; so is a digest about a peer that joined less than a pull
//     timeout ago and whose join snapshot has not arrived yet.
//
// Only peers that are behind get a snapshot, so an idle cluster exchanges
// digests of a few bytes per state instead of every view. Blind periodic
// broadcast of full snapshots (SyncStrategy.PeriodicFullSync) stays
// available to states that ask for it.
//
// Wire compatibility: KindDigest is a new kind of protocol version 1. A node
// of a release without it refuses the message as malformed (an unknown
// kind), counts it as a decode error and logs a rate-limited warning; its
// views are repaired by the mechanisms it has (periodic full sync). Hosts
// that run such nodes beside new ones may turn digests off until the
// upgrade is complete.

// NewDigest returns the digest of source's own states: one entry per state
// (entries' Source is set to source), sorted by state name. Entries must
// name distinct states; a later duplicate is dropped.
func NewDigest(source NodeID, sentUnixMs int64, entries []ChangeNotification) WireMessage {
	es := slices.Clone(entries)
	for i := range es {
		es[i].Source = source
	}
	slices.SortStableFunc(es, func(a, b ChangeNotification) int { return strings.Compare(a.State, b.State) })
	es = slices.CompactFunc(es, func(a, b ChangeNotification) bool { return a.State == b.State })
	return WireMessage{Kind: KindDigest, Source: source, SentUnixMs: sentUnixMs, Notifications: es}
}

// DigestEntry returns this engine's entry of the node's digest: the state's
// name and the generation of the published own view (a mutation prepared
// but not committed is not announced).
func (e *Engine[S, V]) DigestEntry() ChangeNotification {
	g := e.obj.Generation
	if own := e.own(); own != nil {
		g = own.Generation
	}
	return ChangeNotification{State: e.name, Source: e.self, Generation: g}
}

// digestEntry finds the engine's state in a digest's sorted entries.
func (e *Engine[S, V]) digestEntry(m *WireMessage) (ChangeNotification, bool) {
	i, ok := slices.BinarySearchFunc(m.Notifications, e.name, func(n ChangeNotification, name string) int {
		return cmp.Compare(n.State, name)
	})
	if !ok {
		return ChangeNotification{}, false
	}
	return m.Notifications[i], true
}

// handleDigest compares the sender's announced generation of this state
// with the view held (see the comment at the top of this file).
func (e *Engine[S, V]) handleDigest(m *WireMessage) {
	src := m.Source
	if src == e.self || src == "" {
		return
	}
	entry, ok := e.digestEntry(m)
	if !ok {
		return
	}
	if _, gone := e.departed[src]; gone {
		e.m.departedIgnored.Add(1)
		return
	}
	e.m.digestsReceived.Add(1)
	now := e.now()
	g := entry.Generation
	cur := e.views.get(src)
	switch {
	case cur != nil && !cur.Generation.IsZero() && cur.Generation == g:
		// Confirmed: the owner is where the view is. A pending generation
		// at or below it is answered too: the placeholder a peer back from
		// a failure gets, which would otherwise stay until the owner
		// changes something, since an unchanged owner sends no snapshot.
		v := e.newView()
		*v = *cur
		v.syncedNs = e.since(now)
		if !g.Less(v.Pending) {
			v.Pending = Generation{}
		}
		e.views.put(src, v)
		p := e.peer(src)
		e.synced(src, p)
		e.attemptApplied(src, p)
		e.clearFailures(src, p)
		if m.SentUnixMs > 0 {
			p.latencyMs = int32(min(max(e.wallMs(now)-m.SentUnixMs, 0), 1<<31-1))
		}
	case cur != nil && g.Less(cur.Generation):
		// Overtaken by newer data.
	case g.IsZero():
		// Nothing to learn from an empty generation.
	case cur != nil && cur.Pending == placeholderPending && e.since(now)-cur.syncedNs < int64(e.pullPeriod):
		// Joined within the pull timeout: the peer's join snapshot is on
		// its way (a digest sent on the new link may overtake it). A
		// later digest pulls if it was lost.
	default:
		e.m.digestsBehind.Add(1)
		e.peer(src)
		e.attempted(src, now)
		if cur == nil || e.cfg.SyncStrategy.PushMode == ActivePush || cur.Pending == placeholderPending {
			e.requestSnapshot(src, now)
			return
		}
		if cur.Pending.Less(g) {
			v := e.newView()
			*v = *cur
			v.Pending = g
			e.views.put(src, v)
		}
	}
}
