package node

import (
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// DefaultDigestInterval is how often a node sends each peer a digest of its
// states' generations when Config.DigestInterval is zero. With it, a view
// that missed an update while nothing more is written is repaired within
// about half a second plus one round trip.
const DefaultDigestInterval = 500 * time.Millisecond

// digestRetry is how long after a frame to a peer was refused (its queue
// was full, or the peer not yet reachable) the node sends that peer a
// digest, so the refused update is pulled without waiting for the next
// periodic digest.
const digestRetry = 100 * time.Millisecond

// Digest anti-entropy (see dstate.KindDigest). The node, not each state,
// sends digests: one message per peer carries every state's generation.
// They go out every digest interval to every peer, and at once to one peer
// when the transport re-establishes its link to it (dstate.LinkNotifier), when
// membership reports it alive again after it failed, and shortly after a
// frame to it was refused. All digest work runs on the node's feed actor.

// digestEvery returns the effective digest interval; 0 means off.
func (n *Node) digestEvery() time.Duration {
	switch d := n.cfg.DigestInterval; {
	case d < 0:
		return 0
	case d == 0:
		return DefaultDigestInterval
	default:
		return d
	}
}

// watchLinks subscribes to the transport's link events, if it has them.
// It runs in New, before the transport starts.
func (n *Node) watchLinks() {
	if ln, ok := n.tr.(dstate.LinkNotifier); ok && n.digestEvery() > 0 {
		ln.NotifyLinkUp(n.linkUp)
	}
}

// startDigests starts the periodic digest. It runs in New.
func (n *Node) startDigests() {
	every := n.digestEvery()
	if every == 0 {
		return
	}
	n.feedMu.Lock()
	n.digestTimer = n.rt.SendInterval(n.feedRef, every, func() { n.sendDigest(*n.peerList.Load()) })
	n.feedMu.Unlock()
}

// linkUp is the transport's link event: a digest to the peer follows at
// once.
func (n *Node) linkUp(peer dstate.NodeID) {
	if n.digestEvery() == 0 || n.isClosed() {
		return
	}
	_ = n.feedRef.Send(func() { n.sendDigestToMember(peer) })
}

// digestSoon sends peer a digest after digestRetry, unless one is already
// owed to it. It is called when a frame to peer was refused.
func (n *Node) digestSoon(peer dstate.NodeID) {
	if n.digestEvery() == 0 {
		return
	}
	n.feedMu.Lock()
	if n.digestOwed == nil {
		n.digestOwed = make(map[dstate.NodeID]struct{})
	}
	_, owed := n.digestOwed[peer]
	n.digestOwed[peer] = struct{}{}
	n.feedMu.Unlock()
	if owed {
		return
	}
	n.rt.SendAfter(n.feedRef, digestRetry, func() {
		n.feedMu.Lock()
		delete(n.digestOwed, peer)
		n.feedMu.Unlock()
		n.sendDigestToMember(peer)
	})
}

// sendDigestToMember sends peer a digest if it is still a member.
func (n *Node) sendDigestToMember(peer dstate.NodeID) {
	n.mu.Lock()
	_, member := n.members[peer]
	n.mu.Unlock()
	if member {
		n.sendDigest([]dstate.NodeID{peer})
	}
}

// sendDigest sends every peer in to one digest of the registered states'
// published generations (several when there are more states than a
// digest may carry). A refused digest is not retried before the next
// interval.
func (n *Node) sendDigest(to []dstate.NodeID) {
	if len(to) == 0 {
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	shards := n.shardList()
	n.mu.Unlock()
	if len(shards) == 0 {
		return
	}
	entries := make([]dstate.ChangeNotification, 0, len(shards))
	for _, s := range shards {
		if e, ok := s.digestEntry(); ok {
			entries = append(entries, e)
		}
	}
	limit := n.limits.WithDefaults().MaxDigestEntries
	sent := n.clock.UnixMilli()
	for len(entries) > 0 {
		k := min(len(entries), limit)
		msg := dstate.NewDigest(n.id, sent, entries[:k])
		entries = entries[k:]
		frame := dstate.EncodeWire(&msg)
		for _, p := range to {
			if err := n.tr.Send(p, frame); err != nil {
				n.stats.sendErrors.Add(1)
				n.warnPeer(p, "send", "digest not sent; the next one follows within the digest interval", "err", err)
			}
		}
		n.stats.digestsSent.Add(uint64(len(to)))
	}
}

// digestEntry returns the state's entry of the node's digest: the
// generation of its published own view. Safe from any goroutine.
func (s *Shard[S, V]) digestEntry() (dstate.ChangeNotification, bool) {
	v, ok := s.eng.Views().Get(s.n.id)
	if !ok {
		return dstate.ChangeNotification{}, false
	}
	return dstate.ChangeNotification{State: s.name, Source: s.n.id, Generation: v.Generation}, true
}

// trackDown records failed members and reports whether kind says that a
// member membership had reported failed is alive again. n.mu is held.
func (n *Node) trackDown(kind dstate.ClusterEventKind, id dstate.NodeID) bool {
	switch kind {
	case dstate.NodeFailed:
		if n.down == nil {
			n.down = make(map[dstate.NodeID]struct{})
		}
		n.down[id] = struct{}{}
	case dstate.NodeJoined, dstate.NodeUpdated:
		if _, ok := n.down[id]; ok {
			delete(n.down, id)
			return n.digestEvery() > 0
		}
	case dstate.NodeLeft, dstate.NodeReaped:
		delete(n.down, id)
	}
	return false
}
