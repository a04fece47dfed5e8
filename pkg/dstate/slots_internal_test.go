package dstate

import (
	"fmt"
	"testing"
	"unsafe"
)

// The slots one writer stores into on every update never share a cache
// line with another writer's: two maps filled in turns (as two engines of
// one process are, their writers on different processors) get slots on
// disjoint 64-byte lines.
func TestSlotsOfDifferentWritersShareNoCacheLine(t *testing.T) {
	const line = 64
	var a, b viewMap[int]
	a.self, b.self = "a", "b"
	lines := map[uintptr]*viewMap[int]{}
	for i := range 64 {
		id := NodeID(fmt.Sprint("n", i))
		for _, m := range []*viewMap[int]{&a, &b} {
			v := new(StateViewObject[int])
			s := m.put(id, v)
			first := uintptr(unsafe.Pointer(s)) / line
			last := (uintptr(unsafe.Pointer(s)) + unsafe.Sizeof(*s) - 1) / line
			for l := first; l <= last; l++ {
				if owner, ok := lines[l]; ok && owner != m {
					t.Fatalf("node %s: a slot shares cache line %#x with the other map's slots", id, l*line)
				}
				lines[l] = m
			}
		}
	}
}

// The writer's remembered slot (the last one looked up) is forgotten when
// the set changes: a removed node is not found, a node added again is
// found in its new slot.
func TestHotSlotFollowsTheSet(t *testing.T) {
	var m viewMap[int]
	m.self = "self"
	a := m.put("a", &StateViewObject[int]{Value: 1})
	m.put("b", &StateViewObject[int]{Value: 2})
	for range 3 {
		if m.slot("a") != a {
			t.Fatal("a's slot changed")
		}
	}
	m.remove("a")
	if s := m.slot("a"); s != nil {
		t.Fatal("a removed, still found")
	}
	a2 := m.put("a", &StateViewObject[int]{Value: 3})
	if a2 == a {
		t.Fatal("a added again in its old slot")
	}
	for range 3 {
		if s := m.slot("a"); s != a2 || s.Load().Value != 3 {
			t.Fatalf("a's slot after it came back: %p, want %p", s, a2)
		}
	}
	if s := m.slot("b"); s == nil || s.Load().Value != 2 {
		t.Fatal("b lost")
	}
}
