package transport

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkLoopbackFanOut is the floor under the latency scenario of
// `dstatectl bench latency`, without dstate: one goroutine writes a 32-byte
// message every 100 µs (paced on a timerfd, as the scenario's pacer is) to
// two connections, one after the other, and a reader goroutine parked on
// each records the time from the send to its read. It reports each
// reader's p50 and p99 in µs ("first" is written to first), and the
// process's CPU use in cores.
func BenchmarkLoopbackFanOut(b *testing.B) { fanOut(b, 0) }

// BenchmarkLoopbackFanOutSpinning is BenchmarkLoopbackFanOut with readers
// that spin instead of parking: after each message a reader polls its
// socket without blocking (yielding its processor between polls) for
// 200 µs, twice the gap between messages, before it parks in the
// netpoller. It measures what busy polling would buy and cost on this
// machine; the transport does not spin.
func BenchmarkLoopbackFanOutSpinning(b *testing.B) { fanOut(b, 200*time.Microsecond) }

// fanOut runs the fan-out benchmark with readers that spin for spin
// before they park (0: they park at once).
func fanOut(b *testing.B, spin time.Duration) {
	var conns, readers []net.Conn
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		r, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		w, err := ln.Accept()
		_ = ln.Close()
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		conns, readers = append(conns, w), append(readers, r)
	}
	epoch := time.Now()
	lat := make([]chan []time.Duration, 2)
	for i, r := range readers {
		lat[i] = make(chan []time.Duration, 1)
		go func() {
			buf := make([]byte, 32)
			got := make([]time.Duration, 0, b.N)
			rd := io.Reader(r)
			if spin > 0 {
				rd = &spinReader{c: r.(*net.TCPConn), spin: spin}
			}
			for range b.N {
				if _, err := io.ReadFull(rd, buf); err != nil {
					break
				}
				got = append(got, time.Since(epoch)-time.Duration(binary.LittleEndian.Uint64(buf)))
			}
			lat[i] <- got
		}()
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		b.Skip("no timerfd:", err)
	}
	timer := os.NewFile(uintptr(fd), "timerfd")
	defer timer.Close()
	msg := make([]byte, 32)
	var expirations [8]byte
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for k := range b.N {
		if d := time.Until(start.Add(time.Duration(k) * 100 * time.Microsecond)); d > 0 {
			spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
			if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
				b.Fatal(err)
			}
			if _, err := timer.Read(expirations[:]); err != nil {
				b.Fatal(err)
			}
		}
		binary.LittleEndian.PutUint64(msg, uint64(time.Since(epoch)))
		for _, c := range conns {
			if _, err := c.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Since(start)), "cores")
	for i, name := range []string{"first", "second"} {
		got := <-lat[i]
		if len(got) == 0 {
			b.Fatal("a reader received nothing")
		}
		slices.Sort(got)
		b.ReportMetric(float64(got[len(got)/2].Nanoseconds())/1e3, name+"-p50-µs")
		b.ReportMetric(float64(got[len(got)*99/100].Nanoseconds())/1e3, name+"-p99-µs")
	}
}

// spinReader reads a TCP connection polling it without blocking, yielding
// the processor between polls, for up to spin before a blocking read.
type spinReader struct {
	c    *net.TCPConn
	spin time.Duration
}

func (s *spinReader) Read(p []byte) (int, error) {
	rc, err := s.c.SyscallConn()
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(s.spin)
	for time.Now().Before(deadline) {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), p)
			return true // never wait in the netpoller here
		}); err != nil {
			return 0, err
		}
		switch {
		case n > 0:
			return n, nil
		case rerr == nil:
			return 0, io.EOF
		case rerr != unix.EAGAIN:
			return 0, rerr
		}
		runtime.Gosched()
	}
	return s.c.Read(p)
}

// processCPU returns the CPU time (user and system) the process used.
func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
