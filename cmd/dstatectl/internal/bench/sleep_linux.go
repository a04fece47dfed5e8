package bench

import (
	"syscall"
	"time"
)

// preciseSleep sleeps for d with nanosleep(2), which the kernel ends within
// its timer slack (50 µs by default) rather than the runtime's millisecond.
// The goroutine's thread blocks in the system call meanwhile; the runtime
// hands its processor to other goroutines if the sleep lasts.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
