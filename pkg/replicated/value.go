package replicated

import (
	"encoding/json"
	"fmt"
	"iter"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// MapValue is an immutable map from K to V: Set and Delete return a new
// value that shares storage with the old one, which stays as it was. The
// zero value is an empty map. Iteration order is unspecified (and differs
// between processes); encodings are deterministic.
type MapValue[K comparable, V any] struct {
	root *hnode[K, V]
	n    int
}

var _ dstate.Persistent = MapValue[string, string]{}

// NewMapValue returns a MapValue holding the entries of m.
func NewMapValue[K comparable, V any](m map[K]V) MapValue[K, V] {
	if len(m) == 0 {
		return MapValue[K, V]{}
	}
	es := make([]entry[K, V], 0, len(m))
	for k, v := range m {
		es = append(es, entry[K, V]{hash: hashOf(k), key: k, val: v})
	}
	return MapValue[K, V]{root: build(es, 0), n: len(es)}
}

// PersistentValue implements dstate.Persistent: a MapValue never changes
// in place.
func (MapValue[K, V]) PersistentValue() {}

// Len returns the number of entries.
func (m MapValue[K, V]) Len() int { return m.n }

// Get returns the value of k and whether k is present.
func (m MapValue[K, V]) Get(k K) (V, bool) {
	if m.root == nil {
		var zero V
		return zero, false
	}
	return m.root.get(hashOf(k), k)
}

// Set returns m with k set to v.
func (m MapValue[K, V]) Set(k K, v V) MapValue[K, V] {
	root, added := m.root.set(entry[K, V]{hash: hashOf(k), key: k, val: v}, 0)
	if added {
		m.n++
	}
	return MapValue[K, V]{root: root, n: m.n}
}

// Delete returns m without k.
func (m MapValue[K, V]) Delete(k K) MapValue[K, V] {
	if m.root == nil {
		return m
	}
	root, removed := m.root.del(hashOf(k), k, 0)
	if !removed {
		return m
	}
	return MapValue[K, V]{root: root, n: m.n - 1}
}

// Apply returns m with the change applied.
func (m MapValue[K, V]) Apply(c MapChange[K, V]) MapValue[K, V] {
	if c.Delete {
		return m.Delete(c.Key)
	}
	return m.Set(c.Key, c.Value)
}

// All iterates over the entries in an unspecified order.
func (m MapValue[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		m.root.all(yield)
	}
}

// ToMap returns the entries as a new Go map (never nil).
func (m MapValue[K, V]) ToMap() map[K]V {
	out := make(map[K]V, m.Len())
	for k, v := range m.All() {
		out[k] = v
	}
	return out
}

// MarshalJSON encodes the map as encoding/json encodes a Go map (an
// object with sorted keys), so that the admin API shows it as one.
func (m MapValue[K, V]) MarshalJSON() ([]byte, error) { return json.Marshal(m.ToMap()) }

// String formats the map as fmt formats a Go map (sorted keys).
func (m MapValue[K, V]) String() string { return fmt.Sprint(m.ToMap()) }
