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
