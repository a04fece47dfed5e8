package codec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/codec"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Presence is the typical struct of the codec tests and benchmarks.
type Presence struct {
	User     string            `json:"user"`
	Status   string            `json:"status"`
	Sessions int               `json:"sessions"`
	LastSeen int64             `json:"last_seen"`
	Tags     []string          `json:"tags,omitempty"`
	Attrs    map[string]string `json:"attrs,omitempty"`
}

func typical() Presence {
	return Presence{User: "user-42", Status: "online", Sessions: 3, LastSeen: 1764880000000,
		Tags: []string{"eu-west", "mobile"}, Attrs: map[string]string{"client": "ios", "version": "2.4.1"}}
}

var codecs = map[string]codec.Codec[Presence]{"json": codec.JSON[Presence](), "cbor": codec.CBOR[Presence]()}

// TestRoundTripAndDeterminism: a value decodes to itself, and equal values
// (maps filled in different orders) encode to equal bytes.
func TestRoundTripAndDeterminism(t *testing.T) {
	for name, c := range codecs {
		t.Run(name, func(t *testing.T) {
			p := typical()
			b, err := c.Encode(p)
			require.NoError(t, err)
			back, err := c.Decode(b)
			require.NoError(t, err)
			require.Equal(t, p, back)
			q := typical()
			q.Attrs = map[string]string{}
			for _, k := range []string{"version", "client"} {
				q.Attrs[k] = p.Attrs[k]
			}
			for range 20 {
				b2, err := c.Encode(q)
				require.NoError(t, err)
				require.True(t, bytes.Equal(b, b2), "got different encodings of equal values")
			}
		})
	}
}

// TestHostileBytesAreMalformed: every decode failure wraps ErrMalformed.
func TestHostileBytesAreMalformed(t *testing.T) {
	bad := map[string][][]byte{
		"json": {nil, []byte("{"), []byte(`{"sessions":"x"}`), []byte(`{} {}`), []byte(`[`)},
		"cbor": {nil, {0xff}, {0xa1}, {0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}, // duplicate key
			{0xbf, 0xff},                             // indefinite length
			{0xc1, 0x00},                             // a tag
			{0x62, 0xff, 0xfe},                       // invalid UTF-8
			{0xa0, 0x00},                             // trailing bytes
			bytes.Repeat([]byte{0x81}, codec.CBORMaxNesting+2), // too deep
		},
	}
	for name, inputs := range bad {
		c := codecs[name]
		for _, b := range inputs {
			_, err := c.Decode(b)
			require.Error(t, err, "%s %x", name, b)
			require.ErrorIs(t, err, dstate.ErrMalformed, "%s %x", name, b)
		}
	}
}

// TestSimpleVersionsAndMigration: a Simple state decodes its own version
// with its codec and others through Migrate, else ErrUnknownVersion.
func TestSimpleVersionsAndMigration(t *testing.T) {
	v1 := codec.Simple("presence", codec.JSON[Presence]())
	require.Equal(t, "presence", v1.Name())
	require.Equal(t, uint32(1), v1.WireVersion())
	require.Equal(t, uint32(1), v1.StorageVersion())
	old, err := v1.EncodeState(typical())
	require.NoError(t, err)

	v2 := codec.Simple("presence", codec.CBOR[Presence]())
	v2.Version = 2
	_, err = v2.DecodeState(old, 1)
	require.ErrorIs(t, err, dstate.ErrUnknownVersion)
	_, err = dstate.DecodeStored(v2, old, 1)
	require.ErrorIs(t, err, dstate.ErrUnknownVersion)

	v2.Migrate = func(data []byte, from uint32) (Presence, error) {
		if from != 1 {
			return Presence{}, dstate.UnknownVersionError(from)
		}
		var p Presence
		if err := json.Unmarshal(data, &p); err != nil {
			return p, dstate.MalformedError("presence v1: %v", err)
		}
		return p, nil
	}
	got, err := dstate.DecodeStored(v2, old, 1)
	require.NoError(t, err)
	require.Equal(t, typical(), got)
	got, err = v2.DecodeState(old, 1) // a v1 node's bytes on the wire
	require.NoError(t, err)
	require.Equal(t, typical(), got)
	_, err = v2.DecodeState(old, 3)
	require.ErrorIs(t, err, dstate.ErrUnknownVersion)
	_, err = v2.DecodeState([]byte{0xff}, 2)
	require.ErrorIs(t, err, dstate.ErrMalformed)
	require.False(t, errors.Is(err, dstate.ErrUnknownVersion))
}
