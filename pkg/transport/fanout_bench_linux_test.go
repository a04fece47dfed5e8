package transport

import (
	"encoding/binary"
	"io"
	"net"
	"os"
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
// reader's p50 and p99 in µs ("first" is written to first).
func BenchmarkLoopbackFanOut(b *testing.B) {
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
			for range b.N {
				if _, err := io.ReadFull(r, buf); err != nil {
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
	start := time.Now()
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
