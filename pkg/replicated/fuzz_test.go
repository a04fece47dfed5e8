package replicated_test

import (
	"errors"
	"testing"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/replicated"
)

// Fuzz targets for the replicated types' decoders, which get any peer's
// views and deltas and any stored state: no input panics, every failure is
// ErrMalformed, and a decode allocates no more than a multiple of its
// input.

func malformed(t *testing.T, what string, in []byte, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, dstate.ErrMalformed) {
		t.Fatalf("%s(%x): %v is not ErrMalformed", what, in, err)
	}
}

func FuzzMap(f *testing.F) {
	defs := kvDefs()
	var v replicated.MapValue[string, string]
	v = v.Set("user-42", "online").Set("", "")
	var seeds [][]byte
	for _, name := range []string{"cbor", "json"} {
		def := defs[name]
		b, _ := def.EncodeView(v)
		d, _ := def.EncodeDelta(replicated.MapChange[string, string]{Key: "k", Delete: true})
		seeds = append(seeds, b, d)
	}
	fuzzcheck.AddBytes(f, seeds)
	f.Fuzz(func(t *testing.T, in []byte) {
		for name, def := range defs {
			var err error
			fuzzcheck.Alloc(t, name+" DecodeView", 0, len(in), 64, func() { _, err = def.DecodeView(in, 1) })
			malformed(t, name+" DecodeView", in, err)
			fuzzcheck.Alloc(t, name+" DecodeDelta", 0, len(in), 64, func() { _, err = def.DecodeDelta(in, 1) })
			malformed(t, name+" DecodeDelta", in, err)
			fuzzcheck.Alloc(t, name+" DecodeState", 0, len(in), 64, func() { _, err = def.DecodeState(in, 1) })
			malformed(t, name+" DecodeState", in, err)
			dec, _ := def.NewViewDecoder(1)
			fuzzcheck.Alloc(t, name+" ViewDecoder.Add", 0, len(in), 64, func() { err = dec.Add(in) })
			malformed(t, name+" ViewDecoder.Add", in, err)
		}
	})
}

func FuzzCounter(f *testing.F) {
	def := replicated.Counter{StateName: "c"}
	a, _ := def.EncodeDelta(-7)
	b, _ := def.EncodeView(1 << 50)
	fuzzcheck.AddBytes(f, [][]byte{a, b})
	f.Fuzz(func(t *testing.T, in []byte) {
		var err error
		fuzzcheck.Alloc(t, "Counter DecodeDelta", 0, len(in), 4, func() { _, err = def.DecodeDelta(in, 1) })
		malformed(t, "Counter DecodeDelta", in, err)
	})
}

func FuzzRegister(f *testing.F) {
	def := replicated.Register[presence]{StateName: "r"}
	a, _ := def.EncodeDelta(presence{"online", 1})
	fuzzcheck.AddBytes(f, [][]byte{a})
	f.Fuzz(func(t *testing.T, in []byte) {
		var err error
		fuzzcheck.Alloc(t, "Register DecodeDelta", 0, len(in), 64, func() { _, err = def.DecodeDelta(in, 1) })
		malformed(t, "Register DecodeDelta", in, err)
	})
}
