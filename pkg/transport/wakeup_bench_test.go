package transport

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// BenchmarkLoopbackWakeup measures the floor under a replicated change's
// latency on this machine: a 32-byte message over loopback TCP to a reader
// goroutine, one way (half a round trip). "running" sends the next message
// at once, so both readers are usually running or about to park; "parked"
// waits 1 ms between messages, so each message wakes a reader parked in
// the netpoller, as a change at a modest rate does. It reports the p50 and
// p99 of the one-way time in µs.
func BenchmarkLoopbackWakeup(b *testing.B) {
	for _, tc := range []struct {
		name string
		gap  time.Duration
	}{{"running", 0}, {"parked", time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() { // echo
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 32)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						return
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg, buf := make([]byte, 32), make([]byte, 32)
			oneWay := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				if tc.gap > 0 {
					time.Sleep(tc.gap)
				}
				t0 := time.Now()
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				oneWay = append(oneWay, time.Since(t0)/2)
			}
			b.StopTimer()
			slices.Sort(oneWay)
			b.ReportMetric(float64(oneWay[len(oneWay)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(oneWay[len(oneWay)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}
