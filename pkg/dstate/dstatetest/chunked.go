package dstatetest

import (
	"maps"
	"slices"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// ChunkedGaugesState is [GaugesState] with views that stream in chunks
// (dstate.ChunkedViewCodec): each chunk is the gauges encoding of a run of
// the view's keys in sorted order, so a one-chunk view is its snapshot.
type ChunkedGaugesState struct{ GaugesState }

var _ dstate.ChunkedViewCodec[GaugesView] = ChunkedGaugesState{}

// EncodeViewChunks implements dstate.ChunkedViewCodec: sorted keys, a chunk
// cut once it holds chunkSize bytes or more.
func (ChunkedGaugesState) EncodeViewChunks(v GaugesView, chunkSize int, emit func([]byte) error) error {
	keys := slices.Sorted(maps.Keys(v))
	part := map[string]int64{}
	size := 0
	for _, k := range keys {
		part[k] = v[k]
		size += len(k) + 2*uvarintLen(uint64(len(k))) + 10
		if size >= chunkSize {
			if err := emit(encodeGauges(part)); err != nil {
				return err
			}
			part, size = map[string]int64{}, 0
		}
	}
	if len(part) > 0 || len(keys) == 0 {
		return emit(encodeGauges(part))
	}
	return nil
}

// NewViewDecoder implements dstate.ChunkedViewCodec.
func (g ChunkedGaugesState) NewViewDecoder(wv uint32) (dstate.ViewDecoder[GaugesView], error) {
	if err := g.readable(wv); err != nil {
		return nil, err
	}
	return &gaugesDecoder{view: GaugesView{}}, nil
}

type gaugesDecoder struct{ view GaugesView }

// Add decodes one chunk; a key seen in an earlier chunk is malformed.
func (d *gaugesDecoder) Add(chunk []byte) error {
	part, err := decodeGauges(chunk)
	if err != nil {
		return err
	}
	for k, x := range part {
		if _, dup := d.view[k]; dup {
			return dstate.MalformedError("gauges: key %q in two chunks", k)
		}
		d.view[k] = x
	}
	return nil
}

// Finish returns the view.
func (d *gaugesDecoder) Finish() (GaugesView, error) { return d.view, nil }
