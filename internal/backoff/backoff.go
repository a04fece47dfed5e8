package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff. The zero value waits zero; a zero Min
// never grows.
type Policy struct {
	// Min is the wait after the first failure, and the floor of every wait.
	Min time.Duration
	// Max caps the wait; a Max below Min means Min.
	Max time.Duration
	// Jitter draws each wait uniformly in [Min, ceiling] ("full jitter"
	// above the floor) instead of waiting the ceiling itself, so peers
	// that failed together do not retry together.
	Jitter bool
	// Rand returns a value in [0, n) for n > 0, the source of the jitter;
	// nil means math/rand/v2's Int64N. A deterministic source makes the
	// waits reproducible.
	Rand func(n int64) int64
}

// Delay returns the wait after the (failures+1)-th consecutive failure:
// Min doubled failures times, at most Max, so Delay(0), the wait after a
// first failure, is Min. With Jitter that is the ceiling of a wait drawn
// in [Min, ceiling].
func (p Policy) Delay(failures int) time.Duration {
	lo, hi := max(p.Min, 0), max(p.Max, p.Min, 0)
	ceil := lo
	for i := 0; i < failures && 0 < ceil && ceil < hi; i++ {
		if ceil > hi/2 { // doubling would pass hi, or overflow
			ceil = hi
		} else {
			ceil *= 2
		}
	}
	if !p.Jitter || ceil <= lo {
		return ceil
	}
	randN := p.Rand
	if randN == nil {
		randN = rand.Int64N
	}
	return lo + time.Duration(randN(int64(ceil-lo)+1))
}

// Backoff counts consecutive failures and returns the wait before each
// retry. The zero value of the counter is ready to use; it is not safe for
// concurrent use.
type Backoff struct {
	Policy
	failures int
}

// Next returns the wait before the next attempt and counts one more
// failure.
func (b *Backoff) Next() time.Duration {
	d := b.Delay(b.failures)
	b.failures++
	return d
}

// Reset forgets the failures: the next wait is Min again.
func (b *Backoff) Reset() { b.failures = 0 }

// Failures returns the number of failures counted since the last Reset.
func (b *Backoff) Failures() int { return b.failures }
