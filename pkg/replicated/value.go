package replicated

import (
	"encoding/json"
	"fmt"
	"hash/maphash"
	"iter"

	"github.com/benbjohnson/immutable"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// MapValue is an immutable map from K to V: Set and Delete return a new
// value that shares storage with the old one, which stays as it was. The
// zero value is an empty map. Iteration order is unspecified (and differs
// between processes); encodings are deterministic.
type MapValue[K comparable, V any] struct {
	m *immutable.Map[K, V]
}

var _ dstate.Persistent = MapValue[string, string]{}

// hashSeed seeds the hash of every map key in this process.
var hashSeed = maphash.MakeSeed()

// hasher hashes any comparable key with hash/maphash.
type hasher[K comparable] struct{}

// Hash implements immutable.Hasher.
func (hasher[K]) Hash(k K) uint32 {
	h := maphash.Comparable(hashSeed, k)
	return uint32(h ^ h>>32)
}

// Equal implements immutable.Hasher.
func (hasher[K]) Equal(a, b K) bool { return a == b }

// NewMapValue returns a MapValue holding the entries of m.
func NewMapValue[K comparable, V any](m map[K]V) MapValue[K, V] {
	if len(m) == 0 {
		return MapValue[K, V]{}
	}
	b := immutable.NewMapBuilder[K, V](hasher[K]{})
	for k, v := range m {
		b.Set(k, v)
	}
	return MapValue[K, V]{b.Map()}
}

// PersistentValue implements dstate.Persistent: a MapValue never changes
// in place.
func (MapValue[K, V]) PersistentValue() {}

// Len returns the number of entries.
func (m MapValue[K, V]) Len() int {
	if m.m == nil {
		return 0
	}
	return m.m.Len()
}

// Get returns the value of k and whether k is present.
func (m MapValue[K, V]) Get(k K) (V, bool) {
	if m.m == nil {
		var zero V
		return zero, false
	}
	return m.m.Get(k)
}

// Set returns m with k set to v.
func (m MapValue[K, V]) Set(k K, v V) MapValue[K, V] {
	if m.m == nil {
		m.m = immutable.NewMap[K, V](hasher[K]{})
	}
	return MapValue[K, V]{m.m.Set(k, v)}
}

// Delete returns m without k.
func (m MapValue[K, V]) Delete(k K) MapValue[K, V] {
	if m.m == nil {
		return m
	}
	return MapValue[K, V]{m.m.Delete(k)}
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
		if m.m == nil {
			return
		}
		for it := m.m.Iterator(); !it.Done(); {
			k, v, _ := it.Next()
			if !yield(k, v) {
				return
			}
		}
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
