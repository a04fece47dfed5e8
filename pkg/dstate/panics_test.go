package dstate_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

type panickyEngine = dstate.DeltaEngine[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]

func newPanickyEngine(t *testing.T, node dstate.NodeID) (*panickyEngine, *dstatetest.PanicSwitch) {
	t.Helper()
	sw := &dstatetest.PanicSwitch{}
	e, err := dstate.NewDeltaEngine(dstatetest.PanickyGauges{Switch: sw}, node, dstate.DefaultStateConfig(),
		dstatetest.NewTestClock(), dstatetest.NewGauges())
	require.NoError(t, err)
	return e, sw
}

// requireCallbackPanic checks that err is the typed error of a panic in
// callback.
func requireCallbackPanic(t *testing.T, err error, callback string) *dstate.CallbackPanicError {
	t.Helper()
	require.ErrorIs(t, err, dstate.ErrCallbackPanic)
	var pe *dstate.CallbackPanicError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, callback, pe.Callback, "the callback named")
	require.NotEmpty(t, pe.Stack, "the stack of the panic")
	return pe
}

// TestDeltaMutationPanicUndone: whichever callback of a delta mutation
// panics, the owned value (with its private fields), the generation, the
// own view and the metrics stay as they were, nothing is pending, and the
// next mutation is the next age.
func TestDeltaMutationPanicUndone(t *testing.T) {
	var nilMap map[string]int64
	var empty []int
	idx := 3
	cases := []struct {
		name     string
		callback string // switched to panic, if any
		fn       func(*dstatetest.Gauges) dstatetest.GaugeChange
		check    func(t *testing.T, pe *dstate.CallbackPanicError)
	}{
		{name: "MapWriteThenPanic", callback: "", fn: func(g *dstatetest.Gauges) dstatetest.GaugeChange {
			g.Values["partial"] = 1
			g.Total += 1
			panic("boom")
		}, check: func(t *testing.T, pe *dstate.CallbackPanicError) { require.Equal(t, "boom", pe.Value) }},
		{name: "NilMapWrite", fn: func(g *dstatetest.Gauges) dstatetest.GaugeChange {
			g.Values["partial"] = 2
			nilMap["x"] = 1
			return dstatetest.GaugeChange{}
		}, check: func(t *testing.T, pe *dstate.CallbackPanicError) {
			var re runtime.Error
			require.ErrorAs(t, pe, &re, "a runtime error is unwrapped")
		}},
		{name: "IndexOutOfRange", fn: func(g *dstatetest.Gauges) dstatetest.GaugeChange {
			delete(g.Values, "a")
			_ = empty[idx]
			return dstatetest.GaugeChange{}
		}},
		{name: "ProjectView", callback: dstate.CallbackProjectView, fn: dstatetest.Set("partial", 3)},
		{name: "ProjectDelta", callback: dstate.CallbackProjectDelta, fn: dstatetest.Set("partial", 4)},
		{name: "SyncUrgency", callback: dstate.CallbackSyncUrgency, fn: dstatetest.Set("partial", 5)},
		{name: "EncodeDelta", callback: dstate.CallbackEncodeDelta, fn: dstatetest.Set("partial", 6)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, sw := newPanickyEngine(t, self)
			e.MutateWithDelta(dstatetest.Set("a", 1))
			before := e.State().Value.Values["a"]
			wantVal, err := dstatetest.GaugesState{}.EncodeState(e.State().Value)
			require.NoError(t, err)
			wantGen, wantMod := e.Generation(), e.State().ModifiedUnixMs
			own, _ := e.Views().Get(self)
			metrics := e.Metrics()

			if tc.callback != "" {
				sw.Set(tc.callback)
			}
			obj, _, err := e.TryPrepareDelta(tc.fn)
			sw.Clear()
			require.Nil(t, obj)
			want := tc.callback
			if want == "" {
				want = dstate.CallbackMutation
			}
			pe := requireCallbackPanic(t, err, want)
			if tc.check != nil {
				tc.check(t, pe)
			}

			gotVal, err := dstatetest.GaugesState{}.EncodeState(e.State().Value)
			require.NoError(t, err)
			require.Equal(t, wantVal, gotVal, "the owned value (with its private total)")
			require.Equal(t, int64(1), before)
			require.Equal(t, wantGen, e.Generation(), "the generation")
			require.Equal(t, wantMod, e.State().ModifiedUnixMs, "the modified time")
			ownAfter, _ := e.Views().Get(self)
			require.Equal(t, own.Value, ownAfter.Value, "the own view")
			require.Equal(t, own.Generation, ownAfter.Generation)
			require.Nil(t, e.PreparedDelta(), "nothing is pending")
			require.Equal(t, metrics, e.Metrics(), "nothing was counted as sent or mutated")

			r := e.MutateWithDelta(dstatetest.Set("b", 2))
			require.Equal(t, wantGen.Age+1, r.Generation.Age, "the next mutation's age")
			require.Len(t, r.Actions, 1)
			require.Equal(t, dstate.ActionBroadcast, r.Actions[0].Kind)
			require.Equal(t, dstate.KindDeltaUpdate, r.Actions[0].Message.Kind)
			require.NotContains(t, r.View, "partial")
			require.Equal(t, dstatetest.GaugesView{"a": 1, "b": 2}, r.View)
		})
	}
}

// TestPreparePanicRaisedAfterUndo: the non-recovering Prepare undoes the
// mutation as well, then panics with the *CallbackPanicError.
func TestPreparePanicRaisedAfterUndo(t *testing.T) {
	e, _ := newPanickyEngine(t, self)
	e.MutateWithDelta(dstatetest.Set("a", 1))
	g := e.Generation()
	func() {
		defer func() {
			r := recover()
			require.NotNil(t, r, "PrepareDelta did not panic")
			err, ok := r.(error)
			require.True(t, ok, "panic value %T is not an error", r)
			requireCallbackPanic(t, err, dstate.CallbackMutation)
		}()
		e.PrepareDelta(func(s *dstatetest.Gauges) dstatetest.GaugeChange { s.Values["x"] = 9; panic("boom") })
	}()
	require.Equal(t, g, e.Generation())
	require.Equal(t, map[string]int64{"a": 1}, e.State().Value.Values)
}

// TestSimpleMutationPanicUndone covers the two checkpoints of simple
// states: a copy (Counter holds no references) and the own snapshot's
// encoding (Gauges as a simple state holds a map, which its view shares).
func TestSimpleMutationPanicUndone(t *testing.T) {
	t.Run("Copy", func(t *testing.T) {
		e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
		e.Mutate(func(c *dstatetest.Counter) { c.Count, c.Label = 1, "one" }, dstate.Default)
		g := e.Generation()
		_, err := e.TryPrepare(func(c *dstatetest.Counter) { c.Count, c.Label = 2, "two"; panic("boom") }, dstate.Default)
		requireCallbackPanic(t, err, dstate.CallbackMutation)
		require.Equal(t, dstatetest.Counter{Count: 1, Label: "one"}, e.State().Value)
		require.Equal(t, g, e.Generation())
		r := e.Mutate(func(c *dstatetest.Counter) { c.Count++ }, dstate.Default)
		require.Equal(t, g.Age+1, r.Generation.Age)
		require.Equal(t, dstatetest.Counter{Count: 2, Label: "one"}, r.View)
	})
	t.Run("SharedMap", func(t *testing.T) {
		sw := &dstatetest.PanicSwitch{}
		def := dstatetest.PanickyGauges{Switch: sw}
		e, err := dstate.NewSimpleEngine[dstatetest.Gauges](def, self, dstate.DefaultStateConfig(), dstatetest.NewTestClock(), dstatetest.NewGauges())
		require.NoError(t, err)
		e.Mutate(func(g *dstatetest.Gauges) { dstatetest.Set("a", 1)(g) }, dstate.Default)
		g := e.Generation()
		_, err = e.TryPrepare(func(g *dstatetest.Gauges) { g.Values["partial"] = 1; panic("boom") }, dstate.Default)
		requireCallbackPanic(t, err, dstate.CallbackMutation)
		require.Equal(t, map[string]int64{"a": 1}, e.State().Value.Values)
		own, _ := e.Views().Get(self)
		require.Equal(t, map[string]int64{"a": 1}, own.Value.Values, "the own view, which shared the written map")
		require.Equal(t, g, own.Generation)

		// A panicking snapshot encoder (a simple state's EncodeState)
		// undoes the mutation too: the snapshot is encoded before anything
		// could be saved.
		sw.Set(dstate.CallbackEncodeState)
		_, err = e.TryPrepare(func(g *dstatetest.Gauges) { g.Values["b"] = 2 }, dstate.Default)
		sw.Clear()
		requireCallbackPanic(t, err, dstate.CallbackEncodeView)
		require.Equal(t, map[string]int64{"a": 1}, e.State().Value.Values)
		require.Equal(t, g, e.Generation())

		r := e.Mutate(func(g *dstatetest.Gauges) { g.Values["c"] = 3 }, dstate.Default)
		require.Equal(t, g.Age+1, r.Generation.Age)
		require.Equal(t, map[string]int64{"a": 1, "c": 3}, r.View.Values)
	})
}

// TestPeerCallbackPanicIsMalformed: a peer's delta or snapshot whose
// decoding panics leaves the last good view, counts as a sync failure,
// names the panic in the peer's status and asks for a snapshot.
func TestPeerCallbackPanicIsMalformed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		callback string
		msg      *dstate.WireMessage
	}{
		{"ApplyDelta", dstate.CallbackApplyDelta, gaugesDelta("n2", gen(peerInc, 2), "k", 2)},
		{"DecodeView", dstate.CallbackDecodeView, gaugesSnapshot("n2", gen(peerInc, 2), dstatetest.GaugesView{"k": 2})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, sw := newPanickyEngine(t, self)
			e.HandleWire(gaugesSnapshot("n2", gen(peerInc, 1), dstatetest.GaugesView{"k": 1}))
			before := e.Metrics().SyncFailures
			sw.Set(tc.callback)
			acts := e.HandleWire(tc.msg)
			sw.Clear()
			wantActions(t, acts, "send(n2, RequestSnapshot(gauges by n1))")
			v, ok := e.Views().Get("n2")
			require.True(t, ok)
			require.Equal(t, gen(peerInc, 1), v.Generation, "the last good view")
			require.Equal(t, dstatetest.GaugesView{"k": 1}, v.Value)
			require.Equal(t, before+1, e.Metrics().SyncFailures)
			st := e.PeerStatuses()
			require.Len(t, st, 1)
			require.Contains(t, st[0].LastError, "panicked")

			// The peer's answer repairs the view.
			e.HandleWire(gaugesSnapshot("n2", gen(peerInc, 2), dstatetest.GaugesView{"k": 2}))
			v, _ = e.Views().Get("n2")
			require.Equal(t, gen(peerInc, 2), v.Generation)
		})
	}
}

// TestSnapshotEncoderPanicSendsNothing: a request answered by a panicking
// encoder sends nothing and counts an encode failure.
func TestSnapshotEncoderPanicSendsNothing(t *testing.T) {
	e, sw := newPanickyEngine(t, self)
	sw.Set(dstate.CallbackEncodeView)
	acts := e.HandleWire(request("gauges", "n2"))
	sw.Clear()
	wantActions(t, acts)
	require.Equal(t, uint64(1), e.Metrics().EncodeFailures)
	acts = e.HandleWire(request("gauges", "n2"))
	require.Len(t, acts, 1)
	require.Equal(t, dstate.KindFullSnapshot, acts[0].Message.Kind)
}

// TestNewEngineProjectPanic: a panicking projection of the initial value
// is an error of the constructor.
func TestNewEngineProjectPanic(t *testing.T) {
	sw := &dstatetest.PanicSwitch{}
	sw.Set(dstate.CallbackProjectView)
	_, err := dstate.NewDeltaEngine(dstatetest.PanickyGauges{Switch: sw}, self, dstate.DefaultStateConfig(), dstatetest.NewTestClock(), dstatetest.NewGauges())
	requireCallbackPanic(t, err, dstate.CallbackProjectView)
}

// TestDecodeStoredPanic: a panicking decoder of a stored value is an error.
func TestDecodeStoredPanic(t *testing.T) {
	sw := &dstatetest.PanicSwitch{}
	sw.Set(dstate.CallbackDecodeState)
	_, err := dstate.DecodeStored[dstatetest.Gauges](dstatetest.PanickyGauges{Switch: sw}, []byte{0, 0}, 1)
	pe := requireCallbackPanic(t, err, dstate.CallbackDecodeState)
	require.Equal(t, "gauges", pe.State)
	require.False(t, errors.Is(err, dstate.ErrMalformed))
}
