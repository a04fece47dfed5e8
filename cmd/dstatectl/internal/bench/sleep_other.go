//go:build !linux

package bench

import "time"

// sleeper is time.Sleep where no timerfd(2) is used.
type sleeper struct{}

func newSleeper() *sleeper { return nil }

// sleep returns after d.
func (*sleeper) sleep(d time.Duration) { time.Sleep(d) }

// close does nothing.
func (*sleeper) close() {}
