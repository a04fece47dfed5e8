package bench

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sleeper sleeps with microsecond precision without holding a processor:
// a timerfd(2), read through the runtime's netpoller, so the goroutine
// parks like any reader while other goroutines run. (time.Sleep wakes at
// the netpoller's millisecond granularity; nanosleep(2) would keep the
// processor in a system call for the whole sleep.) The kernel ends the
// sleep within its timer slack, tens of microseconds late.
type sleeper struct {
	fd int
	f  *os.File
}

// newSleeper returns a sleeper, or nil when the system refuses a timerfd
// (sleep then falls back to time.Sleep).
func newSleeper() *sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	return &sleeper{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}
}

// sleep returns after d. One goroutine at a time.
func (s *sleeper) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	if s != nil {
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
		var expirations [8]byte
		if unix.TimerfdSettime(s.fd, 0, &spec, nil) == nil {
			if _, err := s.f.Read(expirations[:]); err == nil {
				return
			}
		}
	}
	time.Sleep(d)
}

// close releases the timerfd.
func (s *sleeper) close() {
	if s != nil {
		_ = s.f.Close()
	}
}
