package replicated

import (
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

var _ dstate.ChunkedViewCodec[MapValue[int, int]] = Map[int, int]{}

// firstChunkEntries is how many entries the first chunk of a stream
// encodes; later chunks are sized from the bytes per entry it measured.
const firstChunkEntries = 64

// EncodeViewChunks implements dstate.ChunkedViewCodec: runs of entries,
// each encoded with the entries codec as a map of its own (so one chunk is
// a snapshot), about chunkSize bytes each. The view is a persistent map:
// the walk reads it while the owner goes on mutating its own.
func (d Map[K, V]) EncodeViewChunks(v MapValue[K, V], chunkSize int, emit func([]byte) error) error {
	c := d.codec()
	want := firstChunkEntries
	part := make(map[K]V, min(want, v.Len()))
	flush := func() error {
		b, err := c.Entries.Encode(part)
		if err != nil {
			return fmt.Errorf("map %q chunk: %w", d.StateName, err)
		}
		if len(part) > 0 {
			perEntry := max(len(b)/len(part), 1)
			want = max(chunkSize/perEntry, 1)
		}
		clear(part)
		return emit(b)
	}
	sent := false
	for k, x := range v.All() {
		part[k] = x
		if len(part) >= want {
			if err := flush(); err != nil {
				return err
			}
			sent = true
		}
	}
	if len(part) > 0 || !sent {
		return flush()
	}
	return nil
}

// NewViewDecoder implements dstate.ChunkedViewCodec.
func (d Map[K, V]) NewViewDecoder(version uint32) (dstate.ViewDecoder[MapValue[K, V]], error) {
	if err := d.checkWire("view", version); err != nil {
		return nil, err
	}
	return &mapDecoder[K, V]{d: d}, nil
}

// mapDecoder builds a streamed view entry by entry into a persistent map.
type mapDecoder[K comparable, V any] struct {
	d    Map[K, V]
	view MapValue[K, V]
}

// Add decodes one chunk and adds its entries; a later chunk's entry
// replaces an earlier one of the same key.
func (m *mapDecoder[K, V]) Add(chunk []byte) error {
	part, err := m.d.codec().Entries.Decode(chunk)
	if err != nil {
		return fmt.Errorf("map %q chunk: %w", m.d.StateName, err)
	}
	for k, x := range part {
		m.view = m.view.Set(k, x)
	}
	return nil
}

// Finish returns the view of the chunks added.
func (m *mapDecoder[K, V]) Finish() (MapValue[K, V], error) { return m.view, nil }
