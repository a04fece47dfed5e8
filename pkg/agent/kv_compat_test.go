package agent

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TestKVEncodingIsUnchanged pins the kv states' bytes, on the wire and on
// disk, to those of the releases whose kv was a Go map in JSON: a rolling
// upgrade mixes both, and stored kv states must load.
func TestKVEncodingIsUnchanged(t *testing.T) {
	def := KVDef{StateName: KVState}
	var m KV
	empty, err := def.EncodeState(m)
	require.NoError(t, err)
	require.Equal(t, `{}`, string(empty))
	m = m.Set("b", "2").Set("a", "1").Set("e", "").Set("q", `"<&>"`)
	for _, enc := range []func(KV) ([]byte, error){def.EncodeState, def.EncodeView} {
		b, err := enc(m)
		require.NoError(t, err)
		require.Equal(t, `{"a":"1","b":"2","e":"","q":"\"\u003c\u0026\u003e\""}`, string(b))
	}
	for c, want := range map[KVChange]string{
		{Key: "k", Value: "v"}:    `{"k":"k","v":"v"}`,
		{Key: "k"}:                `{"k":"k"}`,
		{Key: "k", Delete: true}:  `{"k":"k","d":true}`,
		{Key: "ü", Value: "<\n>"}: `{"k":"ü","v":"\u003c\n\u003e"}`,
	} {
		b, err := def.EncodeDelta(c)
		require.NoError(t, err)
		require.Equal(t, want, string(b))
		back, err := def.DecodeDelta(b, 1)
		require.NoError(t, err)
		require.Equal(t, c, back)
	}
	// What older releases stored and sent decodes.
	for data, want := range map[string]map[string]string{
		`null`:               {},
		`{}`:                 {},
		`{"a":"1","b":"2"}`:  {"a": "1", "b": "2"},
		` {"x" : "y"} `:      {"x": "y"},
		`{"a":"1","a":"2"}`:  {"a": "2"},
		`{"k":"\u00fc\n"}  `: {"k": "ü\n"},
	} {
		v, err := def.DecodeState([]byte(data), 1)
		require.NoError(t, err, data)
		require.Equal(t, want, v.ToMap(), data)
		v, err = def.DecodeView([]byte(data), 1)
		require.NoError(t, err, data)
		require.Equal(t, want, v.ToMap(), data)
	}
	_, err = def.DecodeState([]byte(`{}`), 2)
	require.ErrorIs(t, err, dstate.ErrUnknownVersion)
	_, err = def.DecodeDelta([]byte(`{"k":`), 1)
	require.ErrorIs(t, err, dstate.ErrMalformed)
}
