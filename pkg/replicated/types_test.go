package replicated_test

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/codec"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/replicated"
)

// countingCodec counts the encodings of a map's entries.
type countingCodec struct {
	codec.Codec[map[string]string]
	n *atomic.Int64
}

func (c countingCodec) Encode(m map[string]string) ([]byte, error) {
	c.n.Add(1)
	return c.Codec.Encode(m)
}

// TestMapWriteEncodesNoWholeMap: through the engine's mutate + delta path,
// a write encodes its delta only: neither the view nor a checkpoint of the
// owned map (MapValue is dstate.Persistent). The one exception is the
// first write, which encodes the view once so that the engine knows the
// snapshot's size (an owner refuses a write that would take it over the
// snapshot limit); later writes bound it by adding their deltas.
func TestMapWriteEncodesNoWholeMap(t *testing.T) {
	var encodes atomic.Int64
	c := replicated.JSONMap[string, string]()
	c.Entries = countingCodec{c.Entries, &encodes}
	def := replicated.Map[string, string]{StateName: "m", Codec: c}
	e, err := dstate.NewDeltaEngine(def, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, replicated.MapValue[string, string]{})
	require.NoError(t, err)
	for i := range 100 {
		ch := replicated.MapChange[string, string]{Key: "k", Value: string(rune('a' + i%26))}
		r := e.MutateWithDelta(func(s *replicated.MapValue[string, string]) replicated.MapChange[string, string] {
			*s = s.Apply(ch)
			return ch
		})
		require.Len(t, r.Actions, 1)
		require.Equal(t, dstate.KindDeltaUpdate, r.Actions[0].Message.Kind)
	}
	require.Equal(t, int64(1), encodes.Load(), "writes encoded the whole map more than once")
}

// TestMapPanickingWriteRollsBack: a mutation that panics after replacing
// the value leaves the previous value in place (restored from the copy).
func TestMapPanickingWriteRollsBack(t *testing.T) {
	def := replicated.Map[string, string]{StateName: "m"}
	e, err := dstate.NewDeltaEngine(def, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, replicated.MapValue[string, string]{}.Set("a", "1"))
	require.NoError(t, err)
	_, _, err = e.TryPrepareDelta(func(s *replicated.MapValue[string, string]) replicated.MapChange[string, string] {
		*s = s.Set("a", "2").Set("b", "3")
		panic("boom")
	})
	require.ErrorIs(t, err, dstate.ErrCallbackPanic)
	require.Equal(t, map[string]string{"a": "1"}, e.State().Value.ToMap())
}

// TestCounter: additions replicate as deltas; hostile bytes and versions
// are refused.
func TestCounter(t *testing.T) {
	def := replicated.Counter{StateName: "c"}
	var owner int64
	view := def.ProjectView(&owner)
	for _, add := range []int64{5, -2, 1 << 40} {
		owner += add
		b, err := def.EncodeDelta(def.ProjectDelta(add))
		require.NoError(t, err)
		d, err := def.DecodeDelta(b, 1)
		require.NoError(t, err)
		view, err = def.ApplyDelta(view, d)
		require.NoError(t, err)
	}
	require.Equal(t, owner, view)
	b, _ := def.EncodeState(owner)
	back, err := def.DecodeState(b, 1)
	require.NoError(t, err)
	require.Equal(t, owner, back)
	for _, bad := range [][]byte{nil, {0x80}, {0x01, 0x02}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		_, err := def.DecodeView(bad, 1)
		require.ErrorIs(t, err, dstate.ErrMalformed, "%x", bad)
	}
	_, err = def.DecodeDelta([]byte{0x02}, 2)
	require.ErrorIs(t, err, dstate.ErrUnknownVersion)
	require.Equal(t, dstate.Default, def.SyncUrgency(0, 1, 1))
	def.Urgency = func(_, _, add int64) dstate.SyncUrgency { return dstate.Immediate }
	require.Equal(t, dstate.Immediate, def.SyncUrgency(0, 1, 1))
}

// presence is a Register's value in the tests.
type presence struct {
	Status string `json:"status"`
	Since  int64  `json:"since"`
}

// TestRegister: the last write replaces the view; both codecs; hostile
// bytes are refused.
func TestRegister(t *testing.T) {
	for name, def := range map[string]replicated.Register[presence]{
		"cbor": {StateName: "r"},
		"json": {StateName: "r", Codec: codec.JSON[presence]()},
	} {
		t.Run(name, func(t *testing.T) {
			view := presence{}
			for _, p := range []presence{{"online", 1}, {"away", 2}} {
				b, err := def.EncodeDelta(def.ProjectDelta(p))
				require.NoError(t, err)
				d, err := def.DecodeDelta(b, 1)
				require.NoError(t, err)
				view, err = def.ApplyDelta(view, d)
				require.NoError(t, err)
			}
			require.Equal(t, presence{"away", 2}, view)
			_, err := def.DecodeView([]byte{0xff, 0x00}, 1)
			require.ErrorIs(t, err, dstate.ErrMalformed)
			_, err = def.DecodeState([]byte{0xa0}, 9)
			require.ErrorIs(t, err, dstate.ErrUnknownVersion)
		})
	}
}

// TestSetIsAMap: a Set's definition is a Map to struct{}.
func TestSetIsAMap(t *testing.T) {
	def := replicated.Set[string]{replicated.Map[string, struct{}]{StateName: "s"}}
	var v replicated.MapValue[string, struct{}]
	v = v.Set("a", struct{}{}).Set("b", struct{}{}).Delete("a")
	b, err := def.EncodeView(v)
	require.NoError(t, err)
	back, err := def.DecodeView(b, 1)
	require.NoError(t, err)
	require.Equal(t, map[string]struct{}{"b": {}}, back.ToMap())
}
