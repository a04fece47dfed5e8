package dstate

import (
	"maps"
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

// viewMap is a two-level map: the outer level, the set of nodes, is
// replaced when a node is added or removed, and each node's slot is
// swapped on every update. Readers take a handle on the current set (one
// atomic load) and look nodes up in it; there is exactly one writer (the
// engine's owner).
//
// Adding or removing a node costs O(log N) amortized, not a copy of the
// whole set. A version of the set (a [Views]) is a Go map, immutable once
// published, plus the changes made since it was built, kept as a stack of
// smaller immutable maps (layers, see [viewLayers]) merged like a binary
// counter: a new change is a layer of one entry, and a layer is merged
// into the next older one while it is more than half as large, so each
// layer is at least twice the size of the next newer one, an entry is
// copied O(log N) times and a lookup probes at most about log₂ N layers.
// The base map is rebuilt with the changes folded in once they are half
// its size (O(1) per change, amortized) or once the writer has looked up
// as many nodes as there are since the last change (O(1) per lookup), so
// a set that stopped changing is read through the base map alone, as the
// plain map it was before: Views.Get checks that there are no layers (one
// load) and indexes the map.
//
// The writer's get and put of the local node (self) skip the lookup: its
// slot is kept aside, as every local mutation reads and replaces it.
type viewMap[V any] struct {
	outer    atomic.Pointer[Views[V]]
	cur      Views[V]      // the writer's copy of *outer
	self     NodeID        // the local node; set once before use
	selfSlot *viewSlot[V]  // self's slot once put; only the writer uses it
	lookups  int           // writer lookups since the last change, while cur has layers
	slots    []viewSlot[V] // the rest of the last slab of slots (see newSlot)
	// hotID's slot is hot, the last one lookup found while the set has no
	// layers; nil once the set changes.
	hotID NodeID
	hot   *viewSlot[V]
}

// slotSlab is how many slots are allocated together (see newSlot).
const slotSlab = 4

// newSlot returns a new slot from the writer's slab. The writer stores into
// a peer's slot on every update from it; slots allocated one by one (16
// bytes each) would share cache lines with other engines' slots, whose
// writers run on other processors, and every update would take the line
// from them. A slab of four is one 64-byte object, which the allocator
// places on a 64-byte boundary: a cache line of one engine's slots only.
// A removed node's slot stays allocated with its slab.
func (m *viewMap[V]) newSlot() *viewSlot[V] {
	if len(m.slots) == 0 {
		m.slots = make([]viewSlot[V], slotSlab)
	}
	s := &m.slots[0]
	m.slots = m.slots[1:]
	return s
}

// viewLayers are the changes to a set of nodes since its base map was
// built: maps from node ID to slot, newest first, each at most half the
// size of the next older one; a nil slot marks a node removed. A node's
// entry is the one in the newest layer that has the node, else base's.
type viewLayers[V any] struct {
	layers  []map[NodeID]*viewSlot[V]
	n       int // nodes in the set
	entries int // entries in all layers
	// overBase is set once a layer has had an entry for a node in base (a
	// node of base removed, maybe added again); until then base's entries
	// hold, and a node found there needs no probe of the layers.
	overBase bool
	// handle is the version's published handle (base and this), and buf
	// the room for the layers of sets up to 2⁸ changes: one allocation
	// per change for both.
	handle Views[V]
	buf    [8]map[NodeID]*viewSlot[V]
}

// Views is a read-only handle on the views of every node, safe to use from
// any goroutine without locks. The set of nodes is fixed when the handle is
// taken; each node's view is loaded when read, so it may be newer than when
// the handle was taken. Objects returned are immutable.
type Views[V any] struct {
	base map[NodeID]*viewSlot[V]
	ov   *viewLayers[V] // changes beyond base; nil if none
	ep   *time.Time     // the engine's epoch, the origin of the views' syncedNs
}

// SyncedAt returns o's SyncedAt: the receiver's monotonic time of the last
// accepted update of the view, from which freshness is measured. o must be
// a view of the engine v comes from (any of its handles will do). A view
// keeps it as nanoseconds since the engine's epoch, 16 bytes less than a
// time.Time in every view held.
func (v Views[V]) SyncedAt(o *StateViewObject[V]) time.Time {
	if v.ep == nil || o == nil {
		return time.Time{}
	}
	return v.ep.Add(time.Duration(o.syncedNs))
}

// slot returns id's slot, or nil.
func (v Views[V]) slot(id NodeID) *viewSlot[V] {
	if o := v.ov; o != nil {
		for _, l := range o.layers {
			if s, ok := l[id]; ok {
				return s
			}
		}
	}
	return v.base[id]
}

// Len returns the number of nodes (the local node included).
func (v Views[V]) Len() int {
	if v.ov == nil {
		return len(v.base)
	}
	return v.ov.n
}

// Get returns a node's view.
func (v Views[V]) Get(id NodeID) (*StateViewObject[V], bool) {
	if s := v.slot(id); s != nil {
		return s.Load(), true
	}
	return nil, false
}

// shadowed reports whether one of layers has an entry for id.
func shadowed[V any](layers []map[NodeID]*viewSlot[V], id NodeID) bool {
	for _, l := range layers {
		if _, ok := l[id]; ok {
			return true
		}
	}
	return false
}

// slots iterates over v's nodes and slots (for range), in no fixed order.
func (v Views[V]) slots(yield func(NodeID, *viewSlot[V]) bool) {
	o := v.ov
	if o == nil {
		for id, s := range v.base {
			if !yield(id, s) {
				return
			}
		}
		return
	}
	for i, l := range o.layers {
		for id, s := range l {
			if s != nil && !shadowed(o.layers[:i], id) && !yield(id, s) {
				return
			}
		}
	}
	for id, s := range v.base {
		if !shadowed(o.layers, id) && !yield(id, s) {
			return
		}
	}
}

// flat returns v with its layers folded into a new base map: a clone of
// base (a copy of its table, cheaper than inserting each entry again) with
// the layers applied, oldest first, or a new map if the set shrank to less
// than half of base, so that base does not keep a table sized for a larger
// set.
func (v Views[V]) flat() Views[V] {
	o := v.ov
	if o == nil {
		return v
	}
	if v.base == nil || 2*o.n < len(v.base) {
		m := make(map[NodeID]*viewSlot[V], o.n)
		for id, s := range v.slots {
			m[id] = s
		}
		return Views[V]{base: m, ep: v.ep}
	}
	m := maps.Clone(v.base)
	for i := len(o.layers) - 1; i >= 0; i-- {
		for id, s := range o.layers[i] {
			if s == nil {
				delete(m, id)
			} else {
				m[id] = s
			}
		}
	}
	return Views[V]{base: m, ep: v.ep}
}

// load returns the current set as one map for the writer to iterate over,
// its changes folded in first (an iteration costs O(N) anyway).
func (m *viewMap[V]) load() map[NodeID]*viewSlot[V] {
	if m.cur.ov != nil {
		m.publish(m.cur.flat())
	}
	return m.cur.base
}

// lookup returns id's slot, or nil.
func (m *viewMap[V]) lookup(id NodeID) *viewSlot[V] {
	if m.cur.ov == nil {
		// Messages come in runs from one peer: the last node looked up is
		// remembered until the set changes (see publish).
		if m.hot != nil && id == m.hotID {
			return m.hot
		}
		s := m.cur.base[id]
		m.hotID, m.hot = id, s
		return s
	}
	return m.lookupLayered(id)
}

// lookupLayered is lookup while the set has layers; it counts the lookups
// and folds the layers once they reach the set's size.
func (m *viewMap[V]) lookupLayered(id NodeID) *viewSlot[V] {
	if m.lookups++; m.lookups >= m.cur.ov.n {
		m.publish(m.cur.flat())
		return m.cur.base[id]
	}
	if o := m.cur.ov; !o.overBase {
		if s := m.cur.base[id]; s != nil {
			return s
		}
		for _, l := range o.layers {
			if s, ok := l[id]; ok {
				return s
			}
		}
		return nil
	}
	return m.cur.slot(id)
}

// publish makes v the current set.
func (m *viewMap[V]) publish(v Views[V]) {
	m.cur = v
	m.lookups = 0
	m.hotID, m.hot = "", nil
	if o := v.ov; o != nil {
		o.handle = v
		m.outer.Store(&o.handle)
		return
	}
	m.outer.Store(&v)
}

// change publishes the set with id's entry set to s (nil: removed), delta
// being the change in the number of nodes.
func (m *viewMap[V]) change(id NodeID, s *viewSlot[V], delta int) {
	cur := m.cur
	var old []map[NodeID]*viewSlot[V]
	o := &viewLayers[V]{n: len(cur.base)}
	if cur.ov != nil {
		old, o.n, o.overBase = cur.ov.layers, cur.ov.n, cur.ov.overBase
	}
	o.n += delta
	if !o.overBase && cur.base[id] != nil {
		o.overBase = true
	}
	top := map[NodeID]*viewSlot[V]{id: s}
	for len(old) > 0 && 2*len(top) > len(old[0]) {
		top = mergeLayers(top, old[0], cur.base, len(old) == 1)
		old = old[1:]
	}
	if len(top) == 0 { // removal marks dropped: the set is base again
		m.publish(Views[V]{base: cur.base, ep: cur.ep})
		return
	}
	o.layers = o.buf[:0]
	o.layers = append(append(o.layers, top), old...)
	for _, l := range o.layers {
		o.entries += len(l)
	}
	next := Views[V]{base: cur.base, ov: o, ep: cur.ep}
	if len(cur.base) < 8 || 2*o.entries >= len(cur.base) {
		next = next.flat()
	}
	m.publish(next)
}

// mergeLayers returns the layer holding newer's entries and older's. When
// the result is the oldest layer, removal marks of nodes base lacks are
// left out.
func mergeLayers[V any](newer, older, base map[NodeID]*viewSlot[V], oldest bool) map[NodeID]*viewSlot[V] {
	out := make(map[NodeID]*viewSlot[V], len(newer)+len(older))
	for id, s := range older {
		out[id] = s
	}
	for id, s := range newer {
		out[id] = s
	}
	if oldest {
		for id, s := range out {
			if s == nil && base[id] == nil {
				delete(out, id)
			}
		}
	}
	return out
}

func (m *viewMap[V]) get(id NodeID) *StateViewObject[V] {
	if m.selfSlot != nil && id == m.self {
		return m.selfSlot.Load()
	}
	if s := m.lookup(id); s != nil {
		return s.Load()
	}
	return nil
}

// slot returns id's slot, or nil if id has none. A slot stays id's until
// id is removed, so the writer may Store into it directly meanwhile.
func (m *viewMap[V]) slot(id NodeID) *viewSlot[V] { return m.lookup(id) }

// put stores v for id, adding the node if needed, and returns id's slot.
func (m *viewMap[V]) put(id NodeID, v *StateViewObject[V]) *viewSlot[V] {
	if m.selfSlot != nil && id == m.self {
		m.selfSlot.Store(v)
		return m.selfSlot
	}
	if s := m.lookup(id); s != nil {
		s.Store(v)
		return s
	}
	s := m.newSlot()
	s.Store(v)
	m.change(id, s, 1)
	if id == m.self {
		m.selfSlot = s
	}
	return s
}

func (m *viewMap[V]) remove(id NodeID) bool {
	if m.lookup(id) == nil {
		return false
	}
	if id == m.self {
		m.selfSlot = nil
	}
	m.change(id, nil, -1)
	return true
}

// views returns a reader's handle on the current set.
func (m *viewMap[V]) views() Views[V] {
	if p := m.outer.Load(); p != nil {
		return *p
	}
	return Views[V]{}
}

// Nodes returns the node IDs in sorted order.
func (v Views[V]) Nodes() []NodeID {
	ids := make([]NodeID, 0, v.Len())
	if v.ov == nil {
		for id := range v.base {
			ids = append(ids, id)
		}
	} else {
		for id := range v.slots {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// All iterates over the views in unspecified order without copying them.
func (v Views[V]) All(yield func(NodeID, *StateViewObject[V]) bool) {
	if v.ov != nil {
		v.allLayered(yield)
		return
	}
	for id, s := range v.base {
		if !yield(id, s.Load()) {
			return
		}
	}
}

func (v Views[V]) allLayered(yield func(NodeID, *StateViewObject[V]) bool) {
	for id, s := range v.slots {
		if !yield(id, s.Load()) {
			return
		}
	}
}

// Map copies the views into a new map of values.
func (v Views[V]) Map() map[NodeID]V {
	out := make(map[NodeID]V, v.Len())
	if v.ov == nil {
		for id, s := range v.base {
			out[id] = s.Load().Value
		}
		return out
	}
	for id, s := range v.slots {
		out[id] = s.Load().Value
	}
	return out
}

// StalePeers returns, sorted, the peers (every node but self) whose view is
// stale at now: a newer generation is pending, or it was last synced more
// than maxStaleness ago. A negative maxStaleness disables the age check.
func (v Views[V]) StalePeers(self NodeID, now time.Time, maxStaleness time.Duration) []NodeID {
	var stale []NodeID
	var nowNs int64
	if v.ep != nil {
		nowNs = int64(now.Sub(*v.ep))
	}
	for id, o := range v.All {
		if id != self && isStale(o, nowNs, maxStaleness) {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	return stale
}

// isStale reports whether o is stale at nowNs (now as nanoseconds since
// the engine's epoch, as o's syncedNs).
func isStale[V any](o *StateViewObject[V], nowNs int64, maxStaleness time.Duration) bool {
	if o.HasPending() {
		return true
	}
	return maxStaleness >= 0 && time.Duration(nowNs-o.syncedNs) > maxStaleness
}
