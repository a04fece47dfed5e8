package node

import (
	"context"
	"errors"
	"iter"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// ChangeKind says what a [Change] reports.
type ChangeKind uint8

const (
	// ViewUpdated: the node's view has a new generation (or, in the
	// initial list, is the view as it stands).
	ViewUpdated ChangeKind = iota + 1
	// ViewRemoved: the node's view is gone (the node left, or departed
	// and was forgotten).
	ViewRemoved
	// PeerFailed: membership declared the node failed; its view, if any,
	// is kept but no longer refreshed until it comes back.
	PeerFailed
)

// String returns the kind's name as the admin API and the CLI print it.
func (k ChangeKind) String() string {
	switch k {
	case ViewUpdated:
		return "updated"
	case ViewRemoved:
		return "removed"
	case PeerFailed:
		return "failed"
	}
	return "unknown"
}

// Change is one change a [Shard.Watch] reports.
type Change[V any] struct {
	// Kind says what happened.
	Kind ChangeKind
	// Node is the node whose view changed.
	Node dstate.NodeID
	// OldGeneration is the generation the watcher saw before (zero when it
	// saw none); Generation is the view's generation now (zero for a
	// removed view or a failed node without one).
	OldGeneration, Generation dstate.Generation
	// View is the view at Generation (for ViewUpdated; the last one known
	// for PeerFailed). It is shared: do not modify it.
	View *dstate.StateViewObject[V]
	// Initial marks the views of the initial list (the state of the
	// cluster when the watch started), delivered before any change.
	Initial bool
	// Skipped is true when generations between OldGeneration and
	// Generation were not delivered: the watcher asked for the latest view
	// only, fell behind, or changes arrived batched.
	Skipped bool
}

// WatchOptions configure a [Shard.Watch].
type WatchOptions struct {
	// Nodes limits the watch to these nodes; empty watches every node.
	Nodes []dstate.NodeID
	// Resume starts after these generations instead of with the initial
	// list: a node's view is reported only when it is newer than the
	// generation given for it (nodes not named are reported as they
	// stand). A reconnecting watcher passes the last generation it saw of
	// each node.
	Resume map[dstate.NodeID]dstate.Generation
	// EveryGeneration delivers every generation the node observed, in
	// order; otherwise (the default) a watcher woken after several changes
	// of one node gets only the latest, with Skipped set. Either way a
	// watcher that falls more than the shard's change buffer behind gets
	// the latest view of each node, with Skipped set.
	EveryGeneration bool
}

// ErrWatchClosed ends a watch whose state was closed (the node stopped).
var ErrWatchClosed = errors.New("dstate: watch: the state was closed")

// watchBuffer is how many changes a shard keeps for its watchers; a
// watcher further behind catches up from the views themselves.
const watchBuffer = 1024

// watchRecord is one change in a shard's buffer.
type watchRecord[V any] struct {
	seq  uint64
	kind ChangeKind
	node dstate.NodeID
	view *dstate.StateViewObject[V] // nil for a removed view
}

// watchHub keeps a shard's recent changes for its watchers. The shard's
// actor appends (only while someone watches: otherwise the hooks cost one
// atomic load); watchers read. Appending never waits for a watcher.
type watchHub[V any] struct {
	watchers atomic.Int32

	mu     sync.RWMutex     // watchers read under the read lock
	ring   []watchRecord[V] // the last watchBuffer changes, by seq % watchBuffer
	next   uint64           // seq of the next record
	wake   chan struct{}    // closed and replaced on every append
	last   map[dstate.NodeID]*dstate.StateViewObject[V]
	failed map[dstate.NodeID]bool
}

func newWatchHub[V any]() *watchHub[V] {
	return &watchHub[V]{wake: make(chan struct{}), last: map[dstate.NodeID]*dstate.StateViewObject[V]{}, failed: map[dstate.NodeID]bool{}}
}

// touched records node's view as it now stands in views, if it changed.
// failed says whether membership reports node failed. It runs on the
// actor.
func (h *watchHub[V]) touched(views dstate.Views[V], node dstate.NodeID, failed bool) {
	if h.watchers.Load() == 0 {
		return
	}
	v, _ := views.Get(node)
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, had := h.last[node]
	switch {
	case v == nil && had:
		delete(h.last, node)
		delete(h.failed, node)
		h.append(ViewRemoved, node, nil)
	case v != nil && v != prev:
		h.last[node] = v
		h.failed[node] = false
		h.append(ViewUpdated, node, v)
	}
	if failed && !h.failed[node] {
		h.failed[node] = true
		h.append(PeerFailed, node, v)
	}
}

func (h *watchHub[V]) append(kind ChangeKind, node dstate.NodeID, v *dstate.StateViewObject[V]) {
	if h.ring == nil {
		h.ring = make([]watchRecord[V], watchBuffer)
	}
	h.ring[h.next%watchBuffer] = watchRecord[V]{seq: h.next, kind: kind, node: node, view: v}
	h.next++
	close(h.wake)
	h.wake = make(chan struct{})
}

// since appends to out the records from seq on (lost is true when some
// of them have left the buffer) and returns the seq to read from next and
// the channel closed at the next append.
func (h *watchHub[V]) since(seq uint64, out []watchRecord[V]) (recs []watchRecord[V], lost bool, next uint64, wake <-chan struct{}) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	first := uint64(0)
	if h.next > watchBuffer {
		first = h.next - watchBuffer
	}
	if seq < first {
		lost, seq = true, first
	}
	for s := seq; s < h.next; s++ {
		out = append(out, h.ring[s%watchBuffer])
	}
	return out, lost, h.next, h.wake
}

// register adds a watcher and returns the seq it reads from.
func (h *watchHub[V]) register() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watchers.Add(1) == 1 {
		// Records were not kept while nobody watched: start afresh.
		clear(h.last)
		clear(h.failed)
	}
	return h.next
}

func (h *watchHub[V]) unregister() { h.watchers.Add(-1) }

// Watch reports changes to the state's views: first the views as they
// stand (the initial list; skipped when opts.Resume is set: then only
// views newer than the generations given; a peer whose state has not
// arrived yet is reported when it does), then every change as it happens, until ctx ends (the sequence then yields ctx's error once) or
// the node closes the state (ErrWatchClosed).
//
// A slow watcher never slows anything else: changes are kept in a
// bounded buffer per state, and a watcher that falls behind it catches up
// from the views themselves, receiving the latest view of each node with
// Skipped set. Its memory is bounded by the number of nodes.
//
// The sequence may be ranged over once; a watcher that stops ranging
// releases its resources at once.
func (s *Shard[S, V]) Watch(ctx context.Context, opts WatchOptions) iter.Seq2[Change[V], error] {
	return func(yield func(Change[V], error) bool) {
		h := s.watch
		seq := h.register()
		defer h.unregister()
		// Make sure the views seen below are at least as new as any record
		// from seq on: the actor records from now on.
		want := func(id dstate.NodeID) bool { return len(opts.Nodes) == 0 || slices.Contains(opts.Nodes, id) }
		seen := map[dstate.NodeID]dstate.Generation{}
		failed := map[dstate.NodeID]bool{}
		for id, g := range opts.Resume {
			seen[id] = g
		}
		views := s.eng.Views()
		for _, fp := range s.eng.FailedPeers() {
			failed[fp.Node] = true
		}
		for _, id := range views.Nodes() { // sorted
			if !want(id) {
				continue
			}
			v, _ := views.Get(id)
			old, resumed := seen[id]
			if v.Generation.IsZero() || resumed && v.Generation.Compare(old) <= 0 {
				continue // a peer whose state has not arrived yet, or seen
			}
			seen[id] = v.Generation
			c := Change[V]{Kind: ViewUpdated, Node: id, OldGeneration: old, Generation: v.Generation, View: v, Initial: opts.Resume == nil}
			c.Skipped = resumed && !next(old, v.Generation)
			if !yield(c, nil) {
				return
			}
		}
		for _, id := range sortedKeys(failed) {
			if !want(id) {
				continue
			}
			v, _ := views.Get(id)
			c := Change[V]{Kind: PeerFailed, Node: id, View: v, Initial: opts.Resume == nil}
			if v != nil {
				c.Generation, c.OldGeneration = v.Generation, v.Generation
			}
			if !yield(c, nil) {
				return
			}
		}
		var buf []watchRecord[V]
		for {
			recs, lost, nextSeq, wake := h.since(seq, buf[:0])
			buf = recs
			seq = nextSeq
			if lost {
				if !s.catchUp(yield, want, seen, failed) {
					return
				}
				recs = nil
			}
			if !opts.EveryGeneration {
				recs = latestPerNode(recs)
			}
			for _, r := range recs {
				if !want(r.node) {
					continue
				}
				c, ok := change(r, seen, failed)
				if !ok {
					continue
				}
				if !yield(c, nil) {
					return
				}
			}
			select {
			case <-wake:
			case <-ctx.Done():
				yield(Change[V]{}, ctx.Err())
				return
			case <-s.closed:
				yield(Change[V]{}, ErrWatchClosed)
				return
			}
		}
	}
}

// catchUp reports, for a watcher that fell behind the buffer, every
// node's view that differs from what it saw, with Skipped set.
func (s *Shard[S, V]) catchUp(yield func(Change[V], error) bool, want func(dstate.NodeID) bool, seen map[dstate.NodeID]dstate.Generation, failed map[dstate.NodeID]bool) bool {
	views := s.eng.Views()
	for _, id := range views.Nodes() { // sorted
		if !want(id) {
			continue
		}
		v, _ := views.Get(id)
		old, ok := seen[id]
		if v.Generation.IsZero() || ok && v.Generation.Compare(old) <= 0 {
			continue
		}
		seen[id] = v.Generation
		failed[id] = false
		if !yield(Change[V]{Kind: ViewUpdated, Node: id, OldGeneration: old, Generation: v.Generation, View: v, Skipped: true}, nil) {
			return false
		}
	}
	for _, id := range sortedKeys(seen) {
		if _, ok := views.Get(id); ok || !want(id) {
			continue
		}
		old := seen[id]
		delete(seen, id)
		delete(failed, id)
		if !yield(Change[V]{Kind: ViewRemoved, Node: id, OldGeneration: old, Skipped: true}, nil) {
			return false
		}
	}
	for _, fp := range s.eng.FailedPeers() {
		if !want(fp.Node) || failed[fp.Node] {
			continue
		}
		failed[fp.Node] = true
		v, _ := views.Get(fp.Node)
		c := Change[V]{Kind: PeerFailed, Node: fp.Node, View: v, Skipped: true}
		if v != nil {
			c.Generation, c.OldGeneration = v.Generation, v.Generation
		}
		if !yield(c, nil) {
			return false
		}
	}
	return true
}

// change turns a record into the change this watcher is told of, given
// what it has seen; ok is false when it tells nothing new.
func change[V any](r watchRecord[V], seen map[dstate.NodeID]dstate.Generation, failed map[dstate.NodeID]bool) (Change[V], bool) {
	old, had := seen[r.node]
	switch r.kind {
	case ViewUpdated:
		if r.view.Generation.IsZero() || had && r.view.Generation.Compare(old) <= 0 {
			return Change[V]{}, false
		}
		seen[r.node] = r.view.Generation
		failed[r.node] = false
		return Change[V]{Kind: ViewUpdated, Node: r.node, OldGeneration: old, Generation: r.view.Generation, View: r.view,
			Skipped: had && !next(old, r.view.Generation)}, true
	case ViewRemoved:
		if !had {
			return Change[V]{}, false
		}
		delete(seen, r.node)
		delete(failed, r.node)
		return Change[V]{Kind: ViewRemoved, Node: r.node, OldGeneration: old}, true
	case PeerFailed:
		if failed[r.node] {
			return Change[V]{}, false
		}
		failed[r.node] = true
		c := Change[V]{Kind: PeerFailed, Node: r.node, View: r.view, OldGeneration: old, Generation: old}
		return c, true
	}
	return Change[V]{}, false
}

// next reports whether g directly follows old (one mutation later, or
// the first generation of a new incarnation).
func next(old, g dstate.Generation) bool {
	if old.IsZero() {
		return true
	}
	if g.Incarnation == old.Incarnation {
		return g.Age == old.Age+1
	}
	return g.Incarnation > old.Incarnation
}

// latestPerNode keeps, for each node, its records from its last update on
// (a removal or failure after it included), in order.
func latestPerNode[V any](recs []watchRecord[V]) []watchRecord[V] {
	if len(recs) < 2 {
		return recs
	}
	lastUpdate := map[dstate.NodeID]int{}
	for i, r := range recs {
		if r.kind == ViewUpdated {
			lastUpdate[r.node] = i
		}
	}
	out := recs[:0]
	for i, r := range recs {
		if r.kind == ViewUpdated && lastUpdate[r.node] != i {
			continue
		}
		out = append(out, r)
	}
	return out
}

func sortedKeys[T any](m map[dstate.NodeID]T) []dstate.NodeID {
	ids := make([]dstate.NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// touched records node's view for the watchers, if it changed. It runs on
// the actor.
func (s *Shard[S, V]) touched(node dstate.NodeID) {
	if s.watch.watchers.Load() == 0 {
		return
	}
	s.watch.touched(s.eng.Views(), node, slices.ContainsFunc(s.eng.FailedPeers(), func(p dstate.StalePeer) bool { return p.Node == node }))
}
