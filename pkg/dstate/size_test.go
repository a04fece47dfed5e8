package dstate_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// requireSizeLimit checks that err is the typed refusal of a result over
// the limit named, for the state named.
func requireSizeLimit(t *testing.T, err error, state, limit string, max int) *dstate.SizeLimitError {
	t.Helper()
	require.ErrorIs(t, err, dstate.ErrStateTooLarge)
	require.ErrorIs(t, err, dstate.ErrLimitExceeded)
	var se *dstate.SizeLimitError
	require.ErrorAs(t, err, &se)
	require.Equal(t, state, se.State)
	require.Equal(t, limit, se.Limit)
	require.Equal(t, max, se.Max)
	require.Greater(t, se.Size, se.Max)
	require.Contains(t, err.Error(), `state "`+state+`"`)
	return se
}

// TestSimpleMutationOverSnapshotLimitRefused: a simple state's mutation
// whose snapshot would be over MaxSnapshot is undone (value, generation,
// own view, metrics) and refused with a *SizeLimitError; the next mutation
// that fits is the next age and publishes.
func TestSimpleMutationOverSnapshotLimitRefused(t *testing.T) {
	for _, push := range []dstate.PushMode{dstate.ActivePush, dstate.ActiveFeedLazyPull} {
		t.Run(push.String(), func(t *testing.T) {
			cfg := dstate.DefaultStateConfig()
			cfg.SyncStrategy.PushMode = push
			e, _ := newCounterEngine(t, cfg)
			e.SetSizeLimits(dstate.DecodeLimits{MaxSnapshot: 64})
			e.Mutate(func(c *dstatetest.Counter) { c.Count, c.Label = 1, "one" }, dstate.Default)
			g, mod := e.Generation(), e.State().ModifiedUnixMs
			own, _ := e.Views().Get(self)
			metrics := e.Metrics()

			obj, err := e.TryPrepare(func(c *dstatetest.Counter) { c.Count, c.Label = 2, strings.Repeat("x", 100) }, dstate.Default)
			require.Nil(t, obj)
			se := requireSizeLimit(t, err, "counter", dstate.LimitSnapshotBytes, 64)
			require.Contains(t, err.Error(), "over the 64 bytes snapshot limit")
			require.Contains(t, err.Error(), "would encode to")
			require.Greater(t, se.Size, 100)

			require.Equal(t, dstatetest.Counter{Count: 1, Label: "one"}, e.State().Value)
			require.Equal(t, g, e.Generation())
			require.Equal(t, mod, e.State().ModifiedUnixMs)
			after, _ := e.Views().Get(self)
			require.Equal(t, own.Value, after.Value)
			require.Equal(t, own.Generation, after.Generation)
			require.Equal(t, metrics, e.Metrics(), "nothing was counted as sent or mutated")

			r := e.Mutate(func(c *dstatetest.Counter) { c.Count = 2 }, dstate.Default)
			require.Equal(t, g.Age+1, r.Generation.Age)
			require.Equal(t, dstatetest.Counter{Count: 2, Label: "one"}, r.View)
			msg, ok := e.SnapshotMessage()
			require.True(t, ok)
			require.Equal(t, r.Generation, msg.Generation)
		})
	}
}

// TestPrepareOverLimitPanicsAfterUndo: the non-recovering Prepare (and so
// Engine.Mutate) undoes the mutation, then panics with the
// *SizeLimitError.
func TestPrepareOverLimitPanicsAfterUndo(t *testing.T) {
	e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
	e.SetSizeLimits(dstate.DecodeLimits{MaxSnapshot: 16})
	g := e.Generation()
	func() {
		defer func() {
			r := recover()
			require.NotNil(t, r, "Prepare did not panic")
			err, ok := r.(error)
			require.True(t, ok, "panic value %T is not an error", r)
			requireSizeLimit(t, err, "counter", dstate.LimitSnapshotBytes, 16)
		}()
		e.Prepare(func(c *dstatetest.Counter) { c.Label = strings.Repeat("y", 32) }, dstate.Default)
	}()
	require.Equal(t, g, e.Generation())
	require.Equal(t, dstatetest.Counter{}, e.State().Value)
}

// deltaPair returns a delta engine on self with the given limits and a
// receiver on n2 holding its view.
func deltaPair(t *testing.T, lim dstate.DecodeLimits) (owner, recv *gaugesEngine) {
	t.Helper()
	owner, _ = newGaugesEngine(t, dstate.DefaultStateConfig())
	owner.SetSizeLimits(lim)
	recv, err := dstate.NewDeltaEngine(dstatetest.GaugesState{}, "n2", dstate.DefaultStateConfig(), dstatetest.NewTestClock(), dstatetest.NewGauges())
	require.NoError(t, err)
	msg, ok := owner.SnapshotMessage()
	require.True(t, ok)
	recv.HandleWire(&msg)
	return owner, recv
}

// deliver hands the broadcasts of actions to recv.
func deliver(t *testing.T, recv *gaugesEngine, actions []dstate.Action) {
	t.Helper()
	for _, a := range actions {
		if a.Kind == dstate.ActionBroadcast {
			m := a.Message
			recv.HandleWire(&m)
		}
	}
}

// requireCurrent checks that recv's view of self is the owner's own view.
func requireCurrent(t *testing.T, owner, recv *gaugesEngine) {
	t.Helper()
	own, _ := owner.Views().Get(self)
	got, ok := recv.Views().Get(self)
	require.True(t, ok)
	require.Equal(t, own.Generation, got.Generation)
	require.Equal(t, own.Value, got.Value)
}

// TestDeltaMutationOverSnapshotLimitRefused: a delta state's mutation
// whose snapshot would pass MaxSnapshot is undone and refused, the
// receiver stays current, and later mutations that fit go on replicating
// as deltas.
func TestDeltaMutationOverSnapshotLimitRefused(t *testing.T) {
	owner, recv := deltaPair(t, dstate.DecodeLimits{MaxSnapshot: 256})
	key := func(i int) string { return strings.Repeat("k", 20) + string(rune('a'+i)) }
	i := 0
	var err error
	for ; i < 26; i++ {
		var r dstate.DeltaMutateResult[dstatetest.GaugesView, dstatetest.GaugeDelta]
		_, _, err = owner.TryPrepareDelta(dstatetest.Set(key(i), int64(i)))
		if err != nil {
			break
		}
		r.MutateResult = owner.Commit()
		deliver(t, recv, r.Actions)
		requireCurrent(t, owner, recv)
	}
	require.Error(t, err, "the state never passed the limit")
	requireSizeLimit(t, err, "gauges", dstate.LimitSnapshotBytes, 256)
	require.Equal(t, uint64(i), owner.Generation().Age, "the generation is the last accepted mutation's")
	require.NotContains(t, owner.State().Value.Values, key(i))
	require.Len(t, owner.State().Value.Values, i)
	require.Nil(t, owner.PreparedDelta(), "nothing is pending")
	requireCurrent(t, owner, recv)

	// A mutation that does not grow the state still fits, and replicates.
	r := owner.MutateWithDelta(dstatetest.Set(key(0), 99))
	require.Equal(t, uint64(i+1), r.Generation.Age)
	require.Equal(t, dstate.KindDeltaUpdate, r.Actions[0].Message.Kind)
	deliver(t, recv, r.Actions)
	requireCurrent(t, owner, recv)
	// Removing a key makes room for another.
	r = owner.MutateWithDelta(func(g *dstatetest.Gauges) dstatetest.GaugeChange {
		delete(g.Values, key(1))
		return dstatetest.GaugeChange{Key: key(1), Delete: true}
	})
	deliver(t, recv, r.Actions)
	_, _, err = owner.TryPrepareDelta(dstatetest.Set(key(i), 1))
	require.NoError(t, err)
	r.MutateResult = owner.Commit()
	deliver(t, recv, r.Actions)
	requireCurrent(t, owner, recv)
}

// TestDeltaBoundDoesNotRefuseOverwrites: deltas that overwrite one key add
// up past the limit, but the snapshot does not grow: the estimate is
// checked by encoding, and nothing is refused.
func TestDeltaBoundDoesNotRefuseOverwrites(t *testing.T) {
	owner, recv := deltaPair(t, dstate.DecodeLimits{MaxSnapshot: 128})
	for i := range 200 {
		_, _, err := owner.TryPrepareDelta(dstatetest.Set("same-key-every-time", int64(i)))
		require.NoError(t, err, "mutation %d", i)
		deliver(t, recv, owner.Commit().Actions)
	}
	requireCurrent(t, owner, recv)
	require.Equal(t, uint64(200), owner.Generation().Age)
}

// TestDeltaOverDeltaLimitRefused: a delta over MaxDelta is refused the same
// way, even when the snapshot would fit.
func TestDeltaOverDeltaLimitRefused(t *testing.T) {
	owner, recv := deltaPair(t, dstate.DecodeLimits{MaxSnapshot: 1 << 20, MaxDelta: 32})
	deliver(t, recv, owner.MutateWithDelta(dstatetest.Set("a", 1)).Actions)
	g := owner.Generation()
	own, _ := owner.Views().Get(self)
	_, _, err := owner.TryPrepareDelta(dstatetest.Set(strings.Repeat("long", 16), 2))
	requireSizeLimit(t, err, "gauges", dstate.LimitDeltaBytes, 32)
	require.Contains(t, err.Error(), "delta would encode to")
	require.Equal(t, g, owner.Generation())
	require.Equal(t, map[string]int64{"a": 1}, owner.State().Value.Values)
	after, _ := owner.Views().Get(self)
	require.Equal(t, own, after)
	requireCurrent(t, owner, recv)
	deliver(t, recv, owner.MutateWithDelta(dstatetest.Set("b", 2)).Actions)
	requireCurrent(t, owner, recv)
	require.Equal(t, g.Age+1, owner.Generation().Age)
}

// TestSizeLimitsDefault: without SetSizeLimits the engine holds mutations
// to the decoders' default payload limit.
func TestSizeLimitsDefault(t *testing.T) {
	e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
	snap, delta := e.SizeLimits()
	require.Equal(t, dstate.DefaultMaxPayload, snap)
	require.Equal(t, dstate.DefaultMaxPayload, delta)
	e.SetSizeLimits(dstate.DecodeLimits{MaxPayload: 1000, MaxDelta: 10})
	snap, delta = e.SizeLimits()
	require.Equal(t, 1000, snap)
	require.Equal(t, 10, delta)
}

func TestSizeLimitErrorMessage(t *testing.T) {
	err := &dstate.SizeLimitError{State: "kv", Limit: dstate.LimitSnapshotBytes, Size: 18035507, Max: 16 << 20}
	require.Equal(t, `dstate: state "kv" would encode to 17.2 MiB (18035507 bytes), over the 16 MiB snapshot limit; the mutation was undone`, err.Error())
	err = &dstate.SizeLimitError{State: "kv", Limit: dstate.LimitDeltaBytes, Size: 1536, Max: 1024}
	require.Equal(t, `dstate: state "kv": the mutation's delta would encode to 1.5 KiB (1536 bytes), over the 1 KiB delta limit; the mutation was undone`, err.Error())
}
