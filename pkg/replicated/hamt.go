package replicated

import (
	"hash/maphash"
	"math/bits"
)

// The persistent map under MapValue: a hash array mapped trie in the
// compressed (CHAMP) layout. Each node has up to 32 slots, addressed by 5
// bits of the key's 64-bit hash per level; a slot holds either one entry
// inline (datamap) or a child node (nodemap), each kind packed in its own
// slice in slot order. An update copies the nodes on one path (a few
// hundred bytes at 100,000 keys) and shares the rest. Below the 64 bits
// of hash a node is a collision bucket: its entries are scanned.

// hashSeed seeds the hash of every map key in this process.
var hashSeed = maphash.MakeSeed()

func hashOf[K comparable](k K) uint64 { return maphash.Comparable(hashSeed, k) }

const (
	hamtBits  = 5
	hamtMask  = 1<<hamtBits - 1
	hamtDepth = 64 // shift at which a node is a collision bucket
)

type entry[K comparable, V any] struct {
	hash uint64
	key  K
	val  V
}

type hnode[K comparable, V any] struct {
	datamap, nodemap uint32
	data             []entry[K, V]
	kids             []*hnode[K, V]
}

func slot(hash uint64, shift uint) uint32 { return 1 << ((hash >> shift) & hamtMask) }

func index(bitmap, bit uint32) int { return bits.OnesCount32(bitmap & (bit - 1)) }

func (n *hnode[K, V]) get(h uint64, k K) (V, bool) {
	for shift := uint(0); n != nil; shift += hamtBits {
		if shift >= hamtDepth {
			for i := range n.data {
				if n.data[i].key == k {
					return n.data[i].val, true
				}
			}
			break
		}
		bit := slot(h, shift)
		if n.datamap&bit != 0 {
			e := &n.data[index(n.datamap, bit)]
			if e.hash == h && e.key == k {
				return e.val, true
			}
			break
		}
		if n.nodemap&bit == 0 {
			break
		}
		n = n.kids[index(n.nodemap, bit)]
	}
	var zero V
	return zero, false
}

// set returns n with e set (n may be nil) and whether e's key is new.
func (n *hnode[K, V]) set(e entry[K, V], shift uint) (*hnode[K, V], bool) {
	if n == nil {
		return &hnode[K, V]{datamap: slot(e.hash, shift), data: []entry[K, V]{e}}, true
	}
	if shift >= hamtDepth {
		for i := range n.data {
			if n.data[i].key == e.key {
				c := n.clone()
				c.data[i] = e
				return c, false
			}
		}
		c := &hnode[K, V]{data: append(n.data[:len(n.data):len(n.data)], e)}
		return c, true
	}
	bit := slot(e.hash, shift)
	switch {
	case n.datamap&bit != 0:
		i := index(n.datamap, bit)
		old := n.data[i]
		if old.hash == e.hash && old.key == e.key {
			c := n.clone()
			c.data[i] = e
			return c, false
		}
		// Two entries in one slot: push both down into a child.
		kid := pair(old, e, shift+hamtBits)
		j := index(n.nodemap, bit)
		c := &hnode[K, V]{datamap: n.datamap &^ bit, nodemap: n.nodemap | bit}
		c.data = make([]entry[K, V], len(n.data)-1)
		copy(c.data, n.data[:i])
		copy(c.data[i:], n.data[i+1:])
		c.kids = make([]*hnode[K, V], len(n.kids)+1)
		copy(c.kids, n.kids[:j])
		c.kids[j] = kid
		copy(c.kids[j+1:], n.kids[j:])
		return c, true
	case n.nodemap&bit != 0:
		j := index(n.nodemap, bit)
		kid, added := n.kids[j].set(e, shift+hamtBits)
		c := &hnode[K, V]{datamap: n.datamap, nodemap: n.nodemap, data: n.data}
		c.kids = make([]*hnode[K, V], len(n.kids))
		copy(c.kids, n.kids)
		c.kids[j] = kid
		return c, added
	}
	i := index(n.datamap, bit)
	c := &hnode[K, V]{datamap: n.datamap | bit, nodemap: n.nodemap, kids: n.kids}
	c.data = make([]entry[K, V], len(n.data)+1)
	copy(c.data, n.data[:i])
	c.data[i] = e
	copy(c.data[i+1:], n.data[i:])
	return c, true
}

// clone copies n's data (its kids are shared, and replaced by copy).
func (n *hnode[K, V]) clone() *hnode[K, V] {
	c := *n
	c.data = append([]entry[K, V](nil), n.data...)
	return &c
}

// pair returns the node at shift holding a and b, whose keys differ.
func pair[K comparable, V any](a, b entry[K, V], shift uint) *hnode[K, V] {
	if shift >= hamtDepth {
		return &hnode[K, V]{data: []entry[K, V]{a, b}}
	}
	ba, bb := slot(a.hash, shift), slot(b.hash, shift)
	if ba == bb {
		return &hnode[K, V]{nodemap: ba, kids: []*hnode[K, V]{pair(a, b, shift+hamtBits)}}
	}
	if ba > bb {
		a, b = b, a
	}
	return &hnode[K, V]{datamap: ba | bb, data: []entry[K, V]{a, b}}
}

// del returns n without k (nil when empty) and whether k was there.
func (n *hnode[K, V]) del(h uint64, k K, shift uint) (*hnode[K, V], bool) {
	if shift >= hamtDepth {
		for i := range n.data {
			if n.data[i].key == k {
				if len(n.data) == 1 {
					return nil, true
				}
				c := &hnode[K, V]{data: make([]entry[K, V], 0, len(n.data)-1)}
				c.data = append(append(c.data, n.data[:i]...), n.data[i+1:]...)
				return c, true
			}
		}
		return n, false
	}
	bit := slot(h, shift)
	switch {
	case n.datamap&bit != 0:
		i := index(n.datamap, bit)
		if e := n.data[i]; e.hash != h || e.key != k {
			return n, false
		}
		if len(n.data) == 1 && len(n.kids) == 0 {
			return nil, true
		}
		c := &hnode[K, V]{datamap: n.datamap &^ bit, nodemap: n.nodemap, kids: n.kids}
		c.data = make([]entry[K, V], len(n.data)-1)
		copy(c.data, n.data[:i])
		copy(c.data[i:], n.data[i+1:])
		return c, true
	case n.nodemap&bit != 0:
		j := index(n.nodemap, bit)
		kid, removed := n.kids[j].del(h, k, shift+hamtBits)
		if !removed {
			return n, false
		}
		switch {
		case kid == nil:
			if len(n.kids) == 1 && len(n.data) == 0 {
				return nil, true
			}
			c := &hnode[K, V]{datamap: n.datamap, nodemap: n.nodemap &^ bit, data: n.data}
			c.kids = make([]*hnode[K, V], len(n.kids)-1)
			copy(c.kids, n.kids[:j])
			copy(c.kids[j:], n.kids[j+1:])
			return c, true
		case len(kid.kids) == 0 && len(kid.data) == 1 && shift+hamtBits < hamtDepth:
			// A child left with one entry: inline it here.
			i := index(n.datamap, bit)
			c := &hnode[K, V]{datamap: n.datamap | bit, nodemap: n.nodemap &^ bit}
			c.data = make([]entry[K, V], len(n.data)+1)
			copy(c.data, n.data[:i])
			c.data[i] = kid.data[0]
			copy(c.data[i+1:], n.data[i:])
			c.kids = make([]*hnode[K, V], len(n.kids)-1)
			copy(c.kids, n.kids[:j])
			copy(c.kids[j:], n.kids[j+1:])
			return c, true
		}
		c := &hnode[K, V]{datamap: n.datamap, nodemap: n.nodemap, data: n.data}
		c.kids = make([]*hnode[K, V], len(n.kids))
		copy(c.kids, n.kids)
		c.kids[j] = kid
		return c, true
	}
	return n, false
}

// all yields n's entries, depth first.
func (n *hnode[K, V]) all(yield func(K, V) bool) bool {
	if n == nil {
		return true
	}
	for i := range n.data {
		if !yield(n.data[i].key, n.data[i].val) {
			return false
		}
	}
	for _, k := range n.kids {
		if !k.all(yield) {
			return false
		}
	}
	return true
}

// build returns the node at shift holding es, whose keys are distinct,
// without intermediate copies (es is reordered).
func build[K comparable, V any](es []entry[K, V], shift uint) *hnode[K, V] {
	if len(es) == 0 {
		return nil
	}
	if shift >= hamtDepth {
		return &hnode[K, V]{data: append([]entry[K, V](nil), es...)}
	}
	var count [1 << hamtBits]int
	for i := range es {
		count[(es[i].hash>>shift)&hamtMask]++
	}
	n := &hnode[K, V]{}
	var start [1 << hamtBits]int
	sum := 0
	for s, c := range count {
		start[s] = sum
		sum += c
		switch {
		case c == 1:
			n.datamap |= 1 << s
		case c > 1:
			n.nodemap |= 1 << s
		}
	}
	// Sort es by slot (a counting sort, in place through a copy).
	sorted := make([]entry[K, V], len(es))
	next := start
	for i := range es {
		s := (es[i].hash >> shift) & hamtMask
		sorted[next[s]] = es[i]
		next[s]++
	}
	n.data = make([]entry[K, V], 0, bits.OnesCount32(n.datamap))
	n.kids = make([]*hnode[K, V], 0, bits.OnesCount32(n.nodemap))
	for s, c := range count {
		switch {
		case c == 1:
			n.data = append(n.data, sorted[start[s]])
		case c > 1:
			n.kids = append(n.kids, build(sorted[start[s]:start[s]+c], shift+hamtBits))
		}
	}
	return n
}
