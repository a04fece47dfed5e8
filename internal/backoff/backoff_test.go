package backoff_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/backoff"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	p := backoff.Policy{Min: 50 * time.Millisecond, Max: time.Second}
	var got []time.Duration
	for f := range 8 {
		got = append(got, p.Delay(f))
	}
	ms := time.Millisecond
	require.Equal(t, []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, time.Second}, got)
	require.Equal(t, 50*ms, p.Delay(-1), "a negative count is no failure")
}

func TestDelayEdges(t *testing.T) {
	require.Zero(t, backoff.Policy{}.Delay(10))
	require.Zero(t, backoff.Policy{Max: time.Second}.Delay(10), "a zero floor never grows")
	require.Equal(t, time.Second, backoff.Policy{Min: time.Second, Max: time.Millisecond}.Delay(3), "Max below Min means Min")
	require.Equal(t, time.Second, backoff.Policy{Min: time.Second}.Delay(3), "no Max: Min")
	huge := backoff.Policy{Min: time.Nanosecond, Max: math.MaxInt64}
	require.Equal(t, time.Duration(math.MaxInt64), huge.Delay(1000), "no overflow")
	require.Equal(t, time.Duration(1<<62), huge.Delay(62))
}

// TestJitter: the wait is uniform in [Min, ceiling]; the source decides.
func TestJitter(t *testing.T) {
	lo, hi := 10*time.Millisecond, 80*time.Millisecond
	bottom := func(int64) int64 { return 0 }
	top := func(n int64) int64 { return n - 1 }
	tests := []struct {
		failures int
		rand     func(int64) int64
		want     time.Duration
	}{
		{0, top, lo}, // the ceiling is the floor: no draw
		{1, bottom, lo},
		{1, top, 2 * lo},
		{2, top, 4 * lo},
		{3, top, hi},
		{9, top, hi},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, backoff.Policy{Min: lo, Max: hi, Jitter: true, Rand: tt.rand}.Delay(tt.failures))
	}
	p := backoff.Policy{Min: lo, Max: hi, Jitter: true}
	for range 1000 {
		d := p.Delay(4)
		require.GreaterOrEqual(t, d, lo)
		require.LessOrEqual(t, d, hi)
	}
}

// TestDeterministic: the same seeded source gives the same waits.
func TestDeterministic(t *testing.T) {
	waits := func() []time.Duration {
		r := rand.New(rand.NewPCG(1, 2))
		b := backoff.Backoff{Policy: backoff.Policy{Min: time.Millisecond, Max: time.Second, Jitter: true, Rand: r.Int64N}}
		var out []time.Duration
		for range 20 {
			out = append(out, b.Next())
		}
		return out
	}
	require.Equal(t, waits(), waits())
}

func TestBackoffCounts(t *testing.T) {
	b := backoff.Backoff{Policy: backoff.Policy{Min: 2 * time.Millisecond, Max: 5 * time.Millisecond}}
	require.Equal(t, 2*time.Millisecond, b.Next())
	require.Equal(t, 4*time.Millisecond, b.Next())
	require.Equal(t, 5*time.Millisecond, b.Next())
	require.Equal(t, 3, b.Failures())
	b.Reset()
	require.Zero(t, b.Failures())
	require.Equal(t, 2*time.Millisecond, b.Next())
}
