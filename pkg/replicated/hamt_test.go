package replicated

import (
	"math/rand/v2"
	"testing"
)

// TestTrieAgainstAGoMap drives the trie with hashes drawn from a small set
// (so that keys share slots at every level and collide in all 64 bits) and
// checks it against a Go map after every step: gets, sets, deletes,
// iteration, and a trie built at once from the same entries.
func TestTrieAgainstAGoMap(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	hashes := []uint64{0, 1, 1 << 5, 1<<5 | 1, 1 << 60, 1 << 63, ^uint64(0), 0xdeadbeef}
	hashOfKey := func(k int) uint64 { return hashes[k%len(hashes)] ^ uint64(k/(2*len(hashes)))<<35 } // k and k+8 collide in all 64 bits
	type ent = entry[int, int]
	ref := map[int]int{}
	var root *hnode[int, int]
	n := 0
	for step := range 20000 {
		k := r.IntN(64)
		h := hashOfKey(k)
		if r.IntN(3) == 0 {
			var removed bool
			if root != nil {
				root, removed = root.del(h, k, 0)
			}
			_, had := ref[k]
			if removed != had {
				t.Fatalf("step %d: del(%d) removed %v, want %v", step, k, removed, had)
			}
			if had {
				n--
			}
			delete(ref, k)
		} else {
			var added bool
			root, added = root.set(ent{hash: h, key: k, val: step}, 0)
			_, had := ref[k]
			if added == had {
				t.Fatalf("step %d: set(%d) added %v, had %v", step, k, added, had)
			}
			if added {
				n++
			}
			ref[k] = step
		}
		if n != len(ref) {
			t.Fatalf("step %d: %d entries, want %d", step, n, len(ref))
		}
		for rk, rv := range ref {
			if v, ok := root.get(hashOfKey(rk), rk); !ok || v != rv {
				t.Fatalf("step %d: get(%d) = %d %v, want %d", step, rk, v, ok, rv)
			}
		}
		if _, ok := root.get(hashOfKey(100), 100); ok {
			t.Fatalf("step %d: get of an absent key found it", step)
		}
		if step%97 == 0 {
			seen := map[int]int{}
			root.all(func(k, v int) bool { seen[k] = v; return true })
			checkSame(t, step, seen, ref)
			var es []ent
			for k, v := range ref {
				es = append(es, ent{hash: hashOfKey(k), key: k, val: v})
			}
			built := map[int]int{}
			build(es, 0).all(func(k, v int) bool { built[k] = v; return true })
			checkSame(t, step, built, ref)
		}
	}
}

func checkSame(t *testing.T, step int, got, want map[int]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("step %d: iterated %d entries, want %d", step, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("step %d: iterated %d=%d, want %d", step, k, got[k], v)
		}
	}
}
