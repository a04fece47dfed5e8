package dstate_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

func TestSystemClock(t *testing.T) {
	var c dstate.SystemClock
	require.WithinDuration(t, time.Now(), c.Now(), time.Minute)
	require.InDelta(t, time.Now().UnixMilli(), c.UnixMilli(), float64(time.Minute.Milliseconds()))
	require.True(t, c.NowCarriesWall())
	fired := make(chan struct{})
	c.AfterFunc(time.Millisecond, func() { close(fired) })
	<-fired
	require.True(t, c.AfterFunc(time.Hour, func() {}).Stop(), "Stop of a pending call")
}

// splitClock is a clock whose wall clock runs an hour ahead of its Now, so
// a test can tell which of the two the engine read. wall says whether it
// claims that its Now carries its wall clock.
type splitClock struct {
	*dstatetest.TestClock
	wall bool
}

func (c splitClock) UnixMilli() int64 { return c.Now().Add(time.Hour).UnixMilli() }

// wallSplitClock is a splitClock that implements dstate.WallClock.
type wallSplitClock struct{ splitClock }

func (c wallSplitClock) NowCarriesWall() bool { return c.wall }

// TestWallClockIsOptIn: the engine takes the wall milliseconds from Now
// only for a clock that says its Now carries them; any other clock is asked
// for UnixMilli.
func TestWallClockIsOptIn(t *testing.T) {
	hour := time.Hour.Milliseconds()
	tests := []struct {
		name      string
		clock     dstate.Clock
		fromNow   bool
		startedAt int64
	}{
		{"plain", splitClock{TestClock: dstatetest.NewTestClock()}, false, dstatetest.DefaultBaseUnixMs + hour},
		{"opted out", wallSplitClock{splitClock{TestClock: dstatetest.NewTestClock()}}, false, dstatetest.DefaultBaseUnixMs + hour},
		{"opted in", wallSplitClock{splitClock{TestClock: dstatetest.NewTestClock(), wall: true}}, true, dstatetest.DefaultBaseUnixMs + hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := dstate.NewSimpleEngine[dstatetest.Counter](dstatetest.CounterState{}, "n1", dstate.DefaultStateConfig(), tt.clock, dstatetest.Counter{})
			require.NoError(t, err)
			require.Equal(t, tt.startedAt, e.State().CreatedUnixMs, "a new incarnation reads UnixMilli")
			e.Mutate(func(c *dstatetest.Counter) { c.Count++ }, dstate.Default)
			want := tt.clock.UnixMilli()
			if tt.fromNow {
				want = tt.clock.Now().UnixMilli()
			}
			require.Equal(t, want, e.State().ModifiedUnixMs)
		})
	}
}
