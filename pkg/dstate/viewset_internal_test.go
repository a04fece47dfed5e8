package dstate

import (
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func clone(m map[NodeID]*viewSlot[int]) map[NodeID]*viewSlot[int] {
	c := make(map[NodeID]*viewSlot[int], len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// checkViews checks that v holds exactly want, through every way of
// reading it, and that its layers keep their shape: each at most half the
// next older one (so there are at most about log₂ of their entries), together smaller than half the base (or they would have been
// folded), and the oldest free of removal marks for nodes base lacks.
func checkViews(t *testing.T, what string, v Views[int], want map[NodeID]*viewSlot[int]) {
	t.Helper()
	got := map[NodeID]*viewSlot[int]{}
	for id, s := range v.slots {
		if _, dup := got[id]; dup {
			t.Fatalf("%s: %s yielded twice", what, id)
		}
		got[id] = s
	}
	if len(got) != len(want) || v.Len() != len(want) {
		t.Fatalf("%s: %d nodes (Len %d), want %d", what, len(got), v.Len(), len(want))
	}
	for id, s := range want {
		if got[id] != s || v.slot(id) != s {
			t.Fatalf("%s: %s: wrong or missing slot", what, id)
		}
		if o, ok := v.Get(id); !ok || o != s.Load() {
			t.Fatalf("%s: Get %s: got %v %v", what, id, o, ok)
		}
	}
	if _, ok := v.Get("absent"); ok {
		t.Fatalf("%s: found an absent node", what)
	}
	n := 0
	for id, o := range v.All {
		if want[id] == nil || want[id].Load() != o {
			t.Fatalf("%s: All yielded %s, not in the set or with the wrong view", what, id)
		}
		n++
	}
	if nodes := v.Nodes(); n != len(want) || len(nodes) != len(want) || !slices.IsSorted(nodes) || len(v.Map()) != len(want) {
		t.Fatalf("%s: All %d, Nodes %d (sorted %v), Map %d, want %d", what, n, len(nodes), slices.IsSorted(nodes), len(v.Map()), len(want))
	}
	o := v.ov
	if o == nil {
		return
	}
	entries := 0
	for i, l := range o.layers {
		if len(l) == 0 || i > 0 && len(l) < 2*len(o.layers[i-1]) {
			t.Fatalf("%s: layer %d of %d has %d entries", what, i, len(o.layers), len(l))
		}
		entries += len(l)
	}
	if entries != o.entries || 2*entries >= len(v.base) || len(o.layers) > bits.Len(uint(entries)) {
		t.Fatalf("%s: %d layers, %d entries (counted %d), base %d", what, len(o.layers), entries, o.entries, len(v.base))
	}
	if !o.overBase {
		for _, l := range o.layers {
			for id := range l {
				if v.base[id] != nil {
					t.Fatalf("%s: a layer has %s, in base, and overBase is not set", what, id)
				}
			}
		}
	}
	for id, s := range o.layers[len(o.layers)-1] {
		if s == nil && v.base[id] == nil {
			t.Fatalf("%s: the oldest layer marks %s removed, which base lacks", what, id)
		}
	}
}

// TestViewMapMatchesMap adds and removes random nodes through a viewMap,
// with or without lookups in between (which fold the changes into its base
// map once they reach the set's size), and checks that its handles agree
// with a map at every step and that older handles keep their set.
func TestViewMapMatchesMap(t *testing.T) {
	for _, lookups := range []int{0, 1, 50} {
		t.Run("lookups-"+strconv.Itoa(lookups), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(lookups)))
			var m viewMap[int]
			m.self = "n0"
			want := map[NodeID]*viewSlot[int]{}
			type handle struct {
				v    Views[int]
				want map[NodeID]*viewSlot[int]
			}
			var old []handle
			layered := 0
			for step := range 6000 {
				// A range that grows, then shrinks: sets from empty to 400.
				span := 1 + min(step, 6000-step)/15
				id := NodeID("n" + strconv.Itoa(rng.IntN(span)))
				if want[id] == nil {
					want[id] = m.put(id, &StateViewObject[int]{Value: step})
				} else {
					if !m.remove(id) {
						t.Fatalf("step %d: remove %s: not found", step, id)
					}
					delete(want, id)
				}
				if m.remove("absent") {
					t.Fatalf("step %d: removed an absent node", step)
				}
				for range rng.IntN(lookups + 1) {
					id := NodeID("n" + strconv.Itoa(rng.IntN(span)))
					if got := m.slot(id); got != want[id] {
						t.Fatalf("step %d: slot %s: got %p, want %p", step, id, got, want[id])
					}
				}
				v := m.views()
				if v.ov != nil {
					layered++
				}
				checkViews(t, "step "+strconv.Itoa(step), v, want)
				if step%100 == 0 {
					old = append(old, handle{v, clone(want)})
				}
			}
			if layered == 0 {
				t.Fatal("the set never had layers")
			}
			for i, h := range old {
				checkViews(t, "handle "+strconv.Itoa(i), h.v, h.want)
			}
		})
	}
}

// TestViewMapChurn replaces one node over and over in a large set: the
// layers stay small, and the writer's lookups fold them away.
func TestViewMapChurn(t *testing.T) {
	var m viewMap[int]
	want := map[NodeID]*viewSlot[int]{}
	for i := range 1000 {
		id := NodeID("p" + strconv.Itoa(i))
		want[id] = m.put(id, &StateViewObject[int]{Value: i})
	}
	for id := range want {
		m.slot(id)
	}
	for i := range 1000 {
		m.remove("churn")
		delete(want, "churn")
		if i%2 == 0 {
			want["churn"] = m.put("churn", &StateViewObject[int]{Value: i})
		}
		if o := m.views().ov; o != nil && o.entries > 1 {
			t.Fatalf("step %d: %d layers with %d entries for one changed node", i, len(o.layers), o.entries)
		}
	}
	checkViews(t, "after churn", m.views(), want)
	for id := range want {
		m.slot(id)
	}
	if m.views().ov != nil {
		t.Fatal("the layers were not folded after as many lookups as nodes")
	}
	checkViews(t, "folded", m.views(), want)
	// The writer's iteration folds the layers too.
	m.put("late", &StateViewObject[int]{})
	if m.views().ov == nil {
		t.Fatal("one addition to 1,000 nodes folded at once")
	}
	n := 0
	for range m.load() {
		n++
	}
	if n != 1001 || m.views().ov != nil {
		t.Fatalf("load: %d nodes, layers %v", n, m.views().ov)
	}
}

// TestViewsSnapshot checks that a Views handle keeps the set of nodes it was
// taken with while the writer adds and removes nodes, and sees their
// updated views.
func TestViewsSnapshot(t *testing.T) {
	var m viewMap[int]
	m.self = "self"
	m.put("self", &StateViewObject[int]{Value: 0})
	for i := range 100 {
		m.put(NodeID("p"+strconv.Itoa(i)), &StateViewObject[int]{Value: i})
	}
	v := m.views()
	m.put("p0", &StateViewObject[int]{Value: 1000})
	m.put("new", &StateViewObject[int]{Value: -1})
	if !m.remove("p1") || m.remove("p1") {
		t.Fatal("remove p1: want true, then false")
	}
	if v.Len() != 101 {
		t.Fatalf("Len %d, want 101", v.Len())
	}
	if o, ok := v.Get("p0"); !ok || o.Value != 1000 {
		t.Fatalf("p0: got %v %v, want the new view", o, ok)
	}
	if o, ok := v.Get("p1"); !ok || o.Value != 1 {
		t.Fatalf("p1: got %v %v, want it in the old handle", o, ok)
	}
	if _, ok := v.Get("new"); ok {
		t.Fatal("new: in the old handle")
	}
	nodes := v.Nodes()
	if len(nodes) != 101 || !slices.IsSorted(nodes) {
		t.Fatalf("Nodes: %d, sorted %v", len(nodes), slices.IsSorted(nodes))
	}
	if got := len(v.Map()); got != 101 {
		t.Fatalf("Map: %d entries", got)
	}
	cur := m.views()
	if cur.ov == nil {
		t.Fatal("two changes to 101 nodes folded at once")
	}
	if cur.Len() != 101 || len(cur.Map()) != 101 {
		t.Fatalf("current: Len %d, Map %d, want 101", cur.Len(), len(cur.Map()))
	}
	if _, ok := cur.Get("p1"); ok {
		t.Fatal("p1: still in the current handle")
	}
	if o, ok := cur.Get("new"); !ok || o.Value != -1 {
		t.Fatalf("new: got %v %v", o, ok)
	}
	if m.get("self").Value != 0 || m.slot("self") != m.selfSlot {
		t.Fatal("self: wrong view or slot")
	}
	for _, h := range []Views[int]{v, cur} {
		n := 0
		for range h.All {
			if n++; n == 3 {
				break
			}
		}
		if n != 3 {
			t.Fatalf("All: stopped after %d, want 3", n)
		}
	}
	if !m.remove("self") || m.selfSlot != nil || m.get("self") != nil {
		t.Fatal("self: still there after its removal")
	}
	var empty Views[int]
	if empty.Len() != 0 || len(empty.Nodes()) != 0 || len(empty.Map()) != 0 {
		t.Fatal("the zero Views is not empty")
	}
	if _, ok := empty.Get("self"); ok {
		t.Fatal("the zero Views has self")
	}
	var none viewMap[int]
	if none.views().Len() != 0 || none.remove("x") || none.get("x") != nil {
		t.Fatal("the zero viewMap is not empty")
	}
}

// TestViewsConcurrentReaders reads handles from other goroutines while the
// writer adds, updates and removes nodes (run with -race).
func TestViewsConcurrentReaders(t *testing.T) {
	var m viewMap[int]
	for i := range 64 {
		m.put(NodeID("p"+strconv.Itoa(i)), &StateViewObject[int]{Value: i})
	}
	done := make(chan struct{})
	errs := make(chan string, 2)
	read := func(r int) string {
		for {
			select {
			case <-done:
				return ""
			default:
			}
			v := m.views()
			n := 0
			for id, o := range v.All {
				if got, ok := v.Get(id); !ok || got == nil || o == nil {
					return "reader " + strconv.Itoa(r) + ": " + string(id) + " yielded by All but not found"
				}
				n++
			}
			if n != v.Len() {
				return "reader " + strconv.Itoa(r) + ": All and Len disagree"
			}
		}
	}
	for r := range 2 {
		go func() { errs <- read(r) }()
	}
	for i := range 3000 {
		id := NodeID("c" + strconv.Itoa(i%50))
		if !m.remove(id) {
			m.put(id, &StateViewObject[int]{Value: i})
		}
		m.put("p"+NodeID(strconv.Itoa(i%64)), &StateViewObject[int]{Value: i})
	}
	close(done)
	for range 2 {
		if e := <-errs; e != "" {
			t.Fatal(e)
		}
	}
}

// BenchmarkViewMapGrow measures the writer's bookkeeping as a set grows
// from empty to n nodes (as an engine's does while a cluster forms), with
// a few lookups after each addition, as messages from peers bring.
func BenchmarkViewMapGrow(b *testing.B) {
	for _, n := range []int{100, 1000} {
		ids := make([]NodeID, n)
		for i := range ids {
			ids[i] = NodeID("node-" + strconv.Itoa(i))
		}
		b.Run("nodes-"+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			o := &StateViewObject[int]{}
			for b.Loop() {
				var m viewMap[int]
				for i, id := range ids {
					m.put(id, o)
					m.slot(id)
					m.slot(ids[i/2])
					m.slot(ids[i*7/8])
				}
			}
		})
	}
}
