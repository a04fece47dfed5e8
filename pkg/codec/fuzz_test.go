package codec_test

import (
	"errors"
	"testing"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/dstate-go/dstate/pkg/codec"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Fuzz targets for the codec helpers' decoders, which get any peer's bytes
// and any file's: no input panics, every failure is ErrMalformed, and a
// decode allocates no more than a multiple of its input.

func seeds[T any](f *testing.F, c codec.Codec[T], vals ...T) {
	f.Helper()
	var s [][]byte
	for _, v := range vals {
		b, err := c.Encode(v)
		if err != nil {
			f.Fatal(err)
		}
		s = append(s, b)
	}
	fuzzcheck.AddBytes(f, append(s, []byte{0xff}, []byte("{")))
}

func checkDecode[T any](t *testing.T, what string, c codec.Codec[T], in []byte) {
	var err error
	fuzzcheck.Alloc(t, what, 0, len(in), 64, func() { _, err = c.Decode(in) })
	if err != nil && !isMalformed(err) {
		t.Fatalf("%s(%x): %v is not ErrMalformed", what, in, err)
	}
}

func isMalformed(err error) bool { return errors.Is(err, dstate.ErrMalformed) }

func FuzzCBOR(f *testing.F) {
	c := codec.CBOR[Presence]()
	m := codec.CBOR[map[string]int64]()
	seeds(f, c, typical(), Presence{})
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode(t, "CBOR Presence", c, in)
		checkDecode(t, "CBOR map", m, in)
	})
}

func FuzzJSON(f *testing.F) {
	c := codec.JSON[Presence]()
	m := codec.JSON[map[string]int64]()
	seeds(f, c, typical(), Presence{})
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode(t, "JSON Presence", c, in)
		checkDecode(t, "JSON map", m, in)
	})
}
