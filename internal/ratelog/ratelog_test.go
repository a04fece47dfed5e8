package ratelog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/ratelog"
)

func TestOnePerKeyPerInterval(t *testing.T) {
	now := time.Unix(0, 0)
	l := &ratelog.Limiter{Interval: time.Second, Now: func() time.Time { return now }}
	ok, n := l.Allow("a")
	require.True(t, ok)
	require.Zero(t, n)
	for range 5 {
		ok, _ = l.Allow("a")
		require.False(t, ok)
	}
	ok, _ = l.Allow("b")
	require.True(t, ok, "another key has its own budget")
	now = now.Add(time.Second)
	ok, n = l.Allow("a")
	require.True(t, ok)
	require.Equal(t, uint64(5), n, "the line let through counts the ones held back")
}

func TestKeysStayBounded(t *testing.T) {
	now := time.Unix(0, 0)
	l := &ratelog.Limiter{Interval: time.Hour, Now: func() time.Time { return now }}
	for i := range 20000 {
		now = now.Add(time.Millisecond)
		ok, _ := l.Allow(fmt.Sprint("peer-", i))
		require.True(t, ok)
	}
	require.LessOrEqual(t, l.Len(), 4096)
}

func ExampleLimiter() {
	l := &ratelog.Limiter{Interval: time.Minute}
	for range 3 {
		if ok, suppressed := l.Allow("n2/frame_bytes"); ok {
			fmt.Println("logged; suppressed before:", suppressed)
		}
	}
	// Output: logged; suppressed before: 0
}
