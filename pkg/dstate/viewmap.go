package dstate

import (
	"slices"
	"sync/atomic"
	"time"
)

// viewSlot holds the current view of one node; the engine replaces the
// object on every change and readers load it without locks. It also holds
// the engine's sync record of the node, which only the writer touches: one
// record per peer instead of an entry in a second map.
type viewSlot[V any] struct {
	atomic.Pointer[StateViewObject[V]]
	peer peerState
}

// viewMap is a two-level copy-on-write map: the outer map is replaced only
// when a node is added or removed, and each node's slot is swapped on every
// update. Reads are two atomic loads; there is exactly one writer (the
// engine's owner).
//
// The writer's get and put of the local node (self) skip the map lookup:
// its slot is kept aside, as every local mutation reads and replaces it.
type viewMap[V any] struct {
	outer    atomic.Pointer[map[NodeID]*viewSlot[V]]
	self     NodeID       // the local node; set once before use
	selfSlot *viewSlot[V] // self's slot once put; only the writer uses it
}

func (m *viewMap[V]) load() map[NodeID]*viewSlot[V] {
	if p := m.outer.Load(); p != nil {
		return *p
	}
	return nil
}

func (m *viewMap[V]) get(id NodeID) *StateViewObject[V] {
	if m.selfSlot != nil && id == m.self {
		return m.selfSlot.Load()
	}
	if s := m.load()[id]; s != nil {
		return s.Load()
	}
	return nil
}

// slot returns id's slot, or nil if id has none. A slot stays id's until
// id is removed, so the writer may Store into it directly meanwhile.
func (m *viewMap[V]) slot(id NodeID) *viewSlot[V] { return m.load()[id] }

// put stores v for id, adding the node if needed, and returns id's slot.
func (m *viewMap[V]) put(id NodeID, v *StateViewObject[V]) *viewSlot[V] {
	if m.selfSlot != nil && id == m.self {
		m.selfSlot.Store(v)
		return m.selfSlot
	}
	cur := m.load()
	if s := cur[id]; s != nil {
		s.Store(v)
		return s
	}
	next := make(map[NodeID]*viewSlot[V], len(cur)+1)
	for k, s := range cur {
		next[k] = s
	}
	s := new(viewSlot[V])
	s.Store(v)
	next[id] = s
	m.outer.Store(&next)
	if id == m.self {
		m.selfSlot = s
	}
	return s
}

func (m *viewMap[V]) remove(id NodeID) bool {
	cur := m.load()
	if _, ok := cur[id]; !ok {
		return false
	}
	if id == m.self {
		m.selfSlot = nil
	}
	next := make(map[NodeID]*viewSlot[V], len(cur))
	for k, s := range cur {
		if k != id {
			next[k] = s
		}
	}
	m.outer.Store(&next)
	return true
}

// Views is a read-only handle on the views of every node, safe to use from
// any goroutine without locks. The set of nodes is fixed when the handle is
// taken; each node's view is loaded when read, so it may be newer than when
// the handle was taken. Objects returned are immutable.
type Views[V any] struct {
	m map[NodeID]*viewSlot[V]
}

// Len returns the number of nodes (the local node included).
func (v Views[V]) Len() int { return len(v.m) }

// Get returns a node's view.
func (v Views[V]) Get(id NodeID) (*StateViewObject[V], bool) {
	if s := v.m[id]; s != nil {
		return s.Load(), true
	}
	return nil, false
}

// Nodes returns the node IDs in sorted order.
func (v Views[V]) Nodes() []NodeID {
	ids := make([]NodeID, 0, len(v.m))
	for id := range v.m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// All iterates over the views in unspecified order without copying them.
func (v Views[V]) All(yield func(NodeID, *StateViewObject[V]) bool) {
	for id, s := range v.m {
		if !yield(id, s.Load()) {
			return
		}
	}
}

// Map copies the views into a new map of values.
func (v Views[V]) Map() map[NodeID]V {
	out := make(map[NodeID]V, len(v.m))
	for id, s := range v.m {
		out[id] = s.Load().Value
	}
	return out
}

// StalePeers returns, sorted, the peers (every node but self) whose view is
// stale at now: a newer generation is pending, or it was last synced more
// than maxStaleness ago. A negative maxStaleness disables the age check.
func (v Views[V]) StalePeers(self NodeID, now time.Time, maxStaleness time.Duration) []NodeID {
	var stale []NodeID
	for id, s := range v.m {
		if id == self {
			continue
		}
		if isStale(s.Load(), now, maxStaleness) {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	return stale
}

func isStale[V any](o *StateViewObject[V], now time.Time, maxStaleness time.Duration) bool {
	if o.HasPending() {
		return true
	}
	return maxStaleness >= 0 && now.Sub(o.SyncedAt) > maxStaleness
}
