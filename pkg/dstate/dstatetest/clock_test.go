package dstatetest_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

var clockStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func TestTestClock(t *testing.T) {
	t.Run("FiresInTimeOrder", func(t *testing.T) {
		fc := dstatetest.NewTestClockAtTime(clockStart)
		var order []string
		record := func(name string) func() {
			return func() { order = append(order, fmt.Sprintf("%s@%v", name, fc.Now().Sub(clockStart))) }
		}
		fc.AfterFunc(3*time.Second, record("c"))
		fc.AfterFunc(time.Second, record("a"))
		fc.AfterFunc(2*time.Second, record("b1"))
		fc.AfterFunc(2*time.Second, record("b2"))
		fc.AfterFunc(time.Second, func() { // schedules within the same Advance
			fc.AfterFunc(500*time.Millisecond, record("nested"))
		})
		fc.AfterFunc(-time.Second, record("now"))
		fc.Advance(2 * time.Second)
		require.Equal(t, []string{"now@0s", "a@1s", "nested@1.5s", "b1@2s", "b2@2s"}, order)
		require.Equal(t, clockStart.Add(2*time.Second), fc.Now())
		require.Equal(t, clockStart.Add(2*time.Second).UnixMilli(), fc.UnixMilli())
		require.Equal(t, 1, fc.Pending())
	})

	t.Run("Stop", func(t *testing.T) {
		fc := dstatetest.NewTestClockAtTime(clockStart)
		fired := false
		s := fc.AfterFunc(time.Second, func() { fired = true })
		require.True(t, s.Stop())
		require.False(t, s.Stop())
		fc.Advance(time.Hour)
		require.False(t, fired)

		s = fc.AfterFunc(time.Second, func() { fired = true })
		fc.Advance(time.Second)
		require.True(t, fired)
		require.False(t, s.Stop(), "Stop after firing")
	})

	t.Run("AdvanceNegative", func(t *testing.T) {
		fc := dstatetest.NewTestClockAtTime(clockStart)
		fc.Advance(-time.Hour)
		require.Equal(t, clockStart, fc.Now())
	})

	t.Run("Concurrent", func(t *testing.T) {
		fc := dstatetest.NewTestClockAtTime(clockStart)
		var fired atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := range 100 {
					s := fc.AfterFunc(time.Duration(i)*time.Millisecond, func() { fired.Add(1) })
					if i%10 == 0 {
						s.Stop()
					}
				}
			})
			wg.Go(func() {
				for range 100 {
					fc.Advance(time.Millisecond)
				}
			})
		}
		wg.Wait()
		fc.Advance(time.Hour)
		require.Zero(t, fc.Pending())
		require.LessOrEqual(t, fired.Load(), int64(4*100))
		require.GreaterOrEqual(t, fired.Load(), int64(4*90))
	})
}

func TestTestClockStartsAndElapses(t *testing.T) {
	c := dstatetest.NewTestClock()
	require.Equal(t, int64(dstatetest.DefaultBaseUnixMs), c.UnixMilli())
	c.Advance(1500 * time.Millisecond)
	require.Equal(t, 1500*time.Millisecond, c.Elapsed())
	require.Equal(t, int64(dstatetest.DefaultBaseUnixMs+1500), c.UnixMilli())
	require.Equal(t, int64(-5), dstatetest.NewTestClockAt(-5).UnixMilli())
}

// ExampleTestClock shows that functions run inside Advance in time order,
// with Now reading their due time.
func ExampleTestClock() {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := dstatetest.NewTestClockAtTime(start)
	report := func(name string) func() {
		return func() { fmt.Println(name, "at", clock.Now().Sub(start)) }
	}
	clock.AfterFunc(2*time.Second, report("second"))
	clock.AfterFunc(time.Second, report("first"))
	clock.AfterFunc(time.Minute, report("later"))
	clock.Advance(5 * time.Second)
	fmt.Println("pending:", clock.Pending())
	// Output:
	// first at 1s
	// second at 2s
	// pending: 1
}
