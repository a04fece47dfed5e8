package replicated_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/replicated"
)

// TestMapValueIsPersistent: Set and Delete leave the value they were
// called on as it was.
func TestMapValueIsPersistent(t *testing.T) {
	var empty replicated.MapValue[string, int]
	a := empty.Set("x", 1)
	b := a.Set("y", 2)
	c := b.Delete("x")
	require.Equal(t, 0, empty.Len())
	require.Equal(t, map[string]int{"x": 1}, a.ToMap())
	require.Equal(t, map[string]int{"x": 1, "y": 2}, b.ToMap())
	require.Equal(t, map[string]int{"y": 2}, c.ToMap())
	_, ok := c.Get("x")
	require.False(t, ok)
	require.Equal(t, 0, empty.Delete("x").Len(), "deleting from the zero value")
	require.Equal(t, "map[x:1 y:2]", b.String())
}

// TestMapValueAgainstAGoMap applies random sets and deletes to a MapValue
// and to a Go map (the reference) and compares them after each step.
func TestMapValueAgainstAGoMap(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	ref := map[int]int{}
	var m replicated.MapValue[int, int]
	for i := range 5000 {
		k := r.IntN(300)
		if r.IntN(3) == 0 {
			delete(ref, k)
			m = m.Delete(k)
		} else {
			ref[k] = i
			m = m.Set(k, i)
		}
		require.Equal(t, len(ref), m.Len(), "step %d", i)
	}
	require.Equal(t, ref, m.ToMap())
}

// kvDefs are the Map definitions every codec test runs on.
func kvDefs() map[string]replicated.Map[string, string] {
	return map[string]replicated.Map[string, string]{
		"cbor": {StateName: "m"},
		"json": {StateName: "m", Codec: replicated.JSONMap[string, string]()},
	}
}

// TestMapEncodingIsDeterministic: equal maps built in different orders
// encode to equal bytes, in both codecs.
func TestMapEncodingIsDeterministic(t *testing.T) {
	for name, def := range kvDefs() {
		t.Run(name, func(t *testing.T) {
			var a, b replicated.MapValue[string, string]
			for i := range 500 {
				a = a.Set(fmt.Sprint("k", i), fmt.Sprint(i))
			}
			for i := 499; i >= 0; i-- {
				b = b.Set(fmt.Sprint("k", i), fmt.Sprint(i))
			}
			b = b.Set("gone", "x").Delete("gone")
			ea, err := def.EncodeView(a)
			require.NoError(t, err)
			eb, err := def.EncodeView(b)
			require.NoError(t, err)
			require.True(t, bytes.Equal(ea, eb), "got different encodings of equal maps")
		})
	}
}

// TestMapDeltasOutOfASnapshot: a peer that decodes a snapshot and applies
// the deltas that followed holds what the owner holds, deletes included.
func TestMapDeltasOutOfASnapshot(t *testing.T) {
	for name, def := range kvDefs() {
		t.Run(name, func(t *testing.T) {
			var owner replicated.MapValue[string, string]
			for i := range 100 {
				owner = owner.Set(fmt.Sprint("k", i), fmt.Sprint(i))
			}
			snap, err := def.EncodeView(def.ProjectView(&owner))
			require.NoError(t, err)
			peer, err := def.DecodeView(snap, 1)
			require.NoError(t, err)
			before := peer
			changes := []replicated.MapChange[string, string]{
				{Key: "k1", Value: "one"}, {Key: "k2", Delete: true}, {Key: "new", Value: ""}, {Key: "k1", Delete: true},
			}
			for _, c := range changes {
				owner = owner.Apply(c)
				data, err := def.EncodeDelta(def.ProjectDelta(c))
				require.NoError(t, err)
				d, err := def.DecodeDelta(data, 1)
				require.NoError(t, err)
				peer, err = def.ApplyDelta(peer, d)
				require.NoError(t, err)
			}
			require.Equal(t, owner.ToMap(), peer.ToMap())
			v, ok := peer.Get("new")
			require.True(t, ok, "an empty value is a value")
			require.Equal(t, "", v)
			require.Equal(t, 100, before.Len(), "applying deltas changed the snapshot's view")
			st, err := def.EncodeState(owner)
			require.NoError(t, err)
			back, err := def.DecodeState(st, 1)
			require.NoError(t, err)
			require.True(t, maps.Equal(owner.ToMap(), back.ToMap()))
		})
	}
}

// TestMapRejectsHostileBytes: bad bytes are ErrMalformed and unknown
// versions ErrUnknownVersion, for views, deltas and stored states.
func TestMapRejectsHostileBytes(t *testing.T) {
	bad := [][]byte{nil, {0xff}, []byte("{"), []byte(`{"k":1}`), {0xa1, 0x61, 'k'}, {0xbf, 0xff}, []byte(`{"a":"b"} x`), {0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	for name, def := range kvDefs() {
		t.Run(name, func(t *testing.T) {
			for _, b := range bad {
				if _, err := def.DecodeView(b, 1); err == nil && len(b) > 0 {
					t.Errorf("DecodeView(%x): no error", b)
				} else if err != nil {
					require.ErrorIs(t, err, dstate.ErrMalformed, "view %x", b)
				}
				if _, err := def.DecodeDelta(b, 1); err == nil {
					t.Errorf("DecodeDelta(%x): no error", b)
				} else {
					require.ErrorIs(t, err, dstate.ErrMalformed, "delta %x", b)
				}
			}
			_, err := def.DecodeView([]byte("{}"), 2)
			require.ErrorIs(t, err, dstate.ErrUnknownVersion)
			_, err = def.DecodeDelta([]byte("{}"), 0)
			require.ErrorIs(t, err, dstate.ErrUnknownVersion)
			_, err = def.DecodeState([]byte("{}"), 2)
			require.ErrorIs(t, err, dstate.ErrUnknownVersion)
			require.False(t, errors.Is(err, dstate.ErrMalformed))
		})
	}
}

// TestMapWireVersions: a Map reads the wire versions 1 up to its own.
func TestMapWireVersions(t *testing.T) {
	def := replicated.Map[string, string]{StateName: "m", Wire: 3, Codec: replicated.JSONMap[string, string]()}
	require.Equal(t, uint32(3), def.WireVersion())
	require.Equal(t, uint32(1), def.StorageVersion())
	for v := uint32(1); v <= 3; v++ {
		_, err := def.DecodeView([]byte(`{"a":"b"}`), v)
		require.NoError(t, err, "version %d", v)
	}
	_, err := def.DecodeView([]byte(`{"a":"b"}`), 4)
	require.ErrorIs(t, err, dstate.ErrUnknownVersion)
}

// TestMapUrgency: the Urgency func decides; without it, Default.
func TestMapUrgency(t *testing.T) {
	def := replicated.Map[string, string]{StateName: "m"}
	var v replicated.MapValue[string, string]
	require.Equal(t, dstate.Default, def.SyncUrgency(v, v, replicated.MapChange[string, string]{Key: "a"}))
	def.Urgency = func(_, _ replicated.MapValue[string, string], c replicated.MapChange[string, string]) dstate.SyncUrgency {
		if c.Delete {
			return dstate.Immediate
		}
		return dstate.Suppress
	}
	require.Equal(t, dstate.Immediate, def.SyncUrgency(v, v, replicated.MapChange[string, string]{Key: "a", Delete: true}))
	require.Equal(t, dstate.Suppress, def.SyncUrgency(v, v, replicated.MapChange[string, string]{Key: "a"}))
}

// TestMapOfStructKeys: any comparable key works (here a struct), in CBOR.
func TestMapOfStructKeys(t *testing.T) {
	type key struct {
		Region string
		ID     int
	}
	def := replicated.Map[key, int]{StateName: "m"}
	var v replicated.MapValue[key, int]
	v = v.Set(key{"eu", 1}, 10).Set(key{"us", 2}, 20)
	b, err := def.EncodeView(v)
	require.NoError(t, err)
	back, err := def.DecodeView(b, 1)
	require.NoError(t, err)
	require.Equal(t, v.ToMap(), back.ToMap())
}
