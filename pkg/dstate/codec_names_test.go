package dstate_test

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// A name the caller already holds (DecodeLimits.Names) is returned as that
// very string: decoding a delta then allocates nothing. Other names are
// decoded as before.
func TestDecodeReusesKnownNames(t *testing.T) {
	state, source := "load", "node-7"
	frame := dstate.EncodeWire(&dstate.WireMessage{
		Kind: dstate.KindDeltaUpdate, State: "load", Source: "node-7",
		Generation: dstate.Generation{Incarnation: 1, Age: 2}, WireVersion: 1, Data: []byte{1, 2, 3},
	})
	lim := dstate.DecodeLimits{Names: map[string]string{state: state, source: source}}

	m, err := dstate.DecodeWireLimits(frame, lim)
	require.NoError(t, err)
	require.Equal(t, "load", m.State)
	require.Equal(t, dstate.NodeID("node-7"), m.Source)
	require.Same(t, unsafe.StringData(state), unsafe.StringData(m.State), "the state name was not the known string")
	require.Same(t, unsafe.StringData(source), unsafe.StringData(string(m.Source)), "the source was not the known string")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := dstate.DecodeWireLimits(frame, lim); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs, "allocations per decoded delta with known names")

	other, err := dstate.DecodeWireLimits(frame, dstate.DecodeLimits{Names: map[string]string{"x": "x"}})
	require.NoError(t, err)
	require.Equal(t, m.State, other.State)
	require.Equal(t, m.Source, other.Source)
	require.NotSame(t, unsafe.StringData(state), unsafe.StringData(other.State))
}

// DecodeLimits.From, the peer a frame came from, is returned as the
// source without a lookup; a frame whose source is another node still
// decodes to that node (the host then refuses it as forged).
func TestDecodeFromIsTheSourceWithoutLookup(t *testing.T) {
	from := dstate.NodeID("node-7")
	for _, kind := range []dstate.MessageKind{dstate.KindDeltaUpdate, dstate.KindRequestSnapshot, dstate.KindSnapshotPull} {
		frame := dstate.EncodeWire(&dstate.WireMessage{
			Kind: kind, State: "load", Source: "node-7",
			Generation: dstate.Generation{Incarnation: 1, Age: 2}, WireVersion: 1, Data: []byte{1},
		})
		m, err := dstate.DecodeWireLimits(frame, dstate.DecodeLimits{From: from})
		require.NoError(t, err, kind)
		require.Equal(t, from, m.Source, kind)
		require.Same(t, unsafe.StringData(string(from)), unsafe.StringData(string(m.Source)), "%s: the source was not From's string", kind)

		m, err = dstate.DecodeWireLimits(frame, dstate.DecodeLimits{From: "node-8"})
		require.NoError(t, err, kind)
		require.Equal(t, dstate.NodeID("node-7"), m.Source, "%s: a source other than From", kind)
	}
}
