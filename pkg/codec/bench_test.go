package codec_test

import (
	"bytes"
	"encoding/gob"
	"strconv"
	"testing"

	"github.com/dstate-go/dstate/pkg/codec"
)

// BenchmarkCodecs compares the candidates of the binary codec helper with
// encoding/json on a typical struct (Presence) and a map of 1,000 entries:
// ns/op of Encode and Decode, and the encoding's size ("bytes"). msgpack
// (github.com/vmihailenco/msgpack/v5) was measured the same way outside
// the module; see BENCHMARKS.md.
func BenchmarkCodecs(b *testing.B) {
	m := make(map[string]int64, 1000)
	for i := range 1000 {
		m["key-"+strconv.Itoa(i)] = int64(i) * 7919
	}
	b.Run("struct", func(b *testing.B) {
		benchCodec(b, "json", codec.JSON[Presence](), typical())
		benchCodec(b, "gob", gobCodec[Presence]{}, typical())
		benchCodec(b, "cbor", codec.CBOR[Presence](), typical())
	})
	b.Run("map1000", func(b *testing.B) {
		benchCodec(b, "json", codec.JSON[map[string]int64](), m)
		benchCodec(b, "gob", gobCodec[map[string]int64]{}, m)
		benchCodec(b, "cbor", codec.CBOR[map[string]int64](), m)
	})
}

func benchCodec[T any](b *testing.B, name string, c codec.Codec[T], v T) {
	data, err := c.Encode(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run(name+"/encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Encode(v); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(data)), "bytes")
	})
	b.Run(name+"/decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Decode(data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(data)), "bytes")
	})
}

// gobCodec is encoding/gob as a Codec, for the comparison only (gob
// decodes hostile input with no bound on what it allocates).
type gobCodec[T any] struct{}

func (gobCodec[T]) Encode(v T) ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(v)
	return buf.Bytes(), err
}

func (gobCodec[T]) Decode(data []byte) (T, error) {
	var v T
	err := gob.NewDecoder(bytes.NewReader(data)).Decode(&v)
	return v, err
}
