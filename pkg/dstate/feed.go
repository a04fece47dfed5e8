package dstate

import (
	"cmp"
	"slices"
)

// ChangeFeedAggregator batches the change notices of every state of one
// node into one BatchedChangeFeed per flush, keeping per (state, source)
// only the highest generation. It is pure and single-owner: hosts call
// Notify with each ActionNotify of their own engines and Flush every batch
// interval. Receivers refuse notices about any other node than the feed's
// sender, so handing it another node's notice relays nothing.
type ChangeFeedAggregator struct {
	self    NodeID
	pending map[feedKey]Generation
}

type feedKey struct {
	state  string
	source NodeID
}

// NewChangeFeedAggregator returns an empty aggregator for node self.
func NewChangeFeedAggregator(self NodeID) *ChangeFeedAggregator {
	return &ChangeFeedAggregator{self: self, pending: make(map[feedKey]Generation)}
}

// Notify records a notice, keeping the higher generation per (state, source).
func (a *ChangeFeedAggregator) Notify(n ChangeNotification) {
	k := feedKey{n.State, n.Source}
	if g, ok := a.pending[k]; !ok || g.Less(n.Generation) {
		a.pending[k] = n.Generation
	}
}

// Len returns the number of pending notices.
func (a *ChangeFeedAggregator) Len() int { return len(a.pending) }

// Flush drains the pending notices into one BatchedChangeFeed, sorted by
// state and source. It reports false when nothing is pending.
func (a *ChangeFeedAggregator) Flush(sentUnixMs int64) (WireMessage, bool) {
	if len(a.pending) == 0 {
		return WireMessage{}, false
	}
	ns := make([]ChangeNotification, 0, len(a.pending))
	for k, g := range a.pending {
		ns = append(ns, ChangeNotification{State: k.state, Source: k.source, Generation: g})
	}
	clear(a.pending)
	slices.SortFunc(ns, func(x, y ChangeNotification) int {
		return cmp.Or(cmp.Compare(x.State, y.State), cmp.Compare(x.Source, y.Source))
	})
	return WireMessage{Kind: KindBatchedChangeFeed, Source: a.self, SentUnixMs: sentUnixMs, Notifications: ns}, true
}
