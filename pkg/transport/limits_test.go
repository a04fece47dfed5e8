package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// helloFrom dials addr from the loopback address local with the given
// node ID's hello, and returns the connection (closed when the test ends)
// and a reader on it.
func helloFrom(t testing.TB, local, addr, id string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{Timeout: waitTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Write(handBuiltHello(ProtocolVersion, "test", id))
	require.NoError(t, err)
	return c, bufio.NewReader(c)
}

// answered reads the acceptor's answer to a hello: true for its hello,
// false when it closed the connection instead.
func answered(t testing.TB, c net.Conn, br *bufio.Reader) bool {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitTimeout)))
	h, err := readHandshake(br)
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "the acceptor neither answered nor closed: %v", err)
		return false
	}
	require.Equal(t, kindHello, h.kind)
	return true
}

// waitClosed waits until the acceptor closes c (a read ends in EOF or a
// reset) and fails the test if it is still open after waitTimeout.
func waitClosed(t testing.TB, c net.Conn, br *bufio.Reader) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitTimeout)))
	_, err := br.ReadByte()
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection is still open after %s", waitTimeout)
	require.Error(t, err)
}

// TestIdleConnectionsOverTheCapsAreClosed: 200 connections from one host
// that send a hello and then nothing. Only the cap's worth are answered and
// held; the others are closed at once and counted, and the goroutines stay
// bounded by the cap. The per-host cap still admits another host; the
// per-listener cap does not.
func TestIdleConnectionsOverTheCapsAreClosed(t *testing.T) {
	const conns, limit = 200, 8
	for _, tt := range []struct {
		name          string
		mutate        func(*Config)
		refused       func(Stats) uint64
		otherHostOpen bool
	}{
		{"per host", func(c *Config) { c.MaxConnsPerHost = limit }, func(s Stats) uint64 { return s.HostConnsRefused }, true},
		{"per listener", func(c *Config) { c.MaxConns = limit }, func(s Stats) uint64 { return s.ConnsRefused }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := startNode(t, "b", tt.mutate)
			goroutines := runtime.NumGoroutine()
			open := 0
			for i := range conns {
				c, br := helloFrom(t, "127.0.0.1", b.Addr(), fmt.Sprintf("attacker-%d", i))
				if answered(t, c, br) {
					open++
				}
			}
			require.Equal(t, limit, open, "connections answered")
			st := b.Stats()
			require.Equal(t, uint64(conns-limit), tt.refused(st), "connections refused")
			require.Equal(t, limit, st.InboundConns)
			// One reader goroutine per held connection, and a few spare
			// for the runtime.
			require.LessOrEqual(t, runtime.NumGoroutine(), goroutines+limit+4)
			require.Len(t, b.logs.errorsLogged("transport: inbound handshake failed"), 0)

			c, br := helloFrom(t, "127.0.0.2", b.Addr(), "other-host")
			require.Equal(t, tt.otherHostOpen, answered(t, c, br), "a connection from another host answered")
		})
	}
}

// TestIdleInboundConnectionIsClosed: a connection that sends its hello and
// then nothing is closed after IdleTimeout and counted.
func TestIdleInboundConnectionIsClosed(t *testing.T) {
	b := startNode(t, "b", func(c *Config) { c.IdleTimeout = 200 * time.Millisecond })
	c, br := helloFrom(t, "127.0.0.1", b.Addr(), "a")
	require.True(t, answered(t, c, br))
	waitClosed(t, c, br)
	require.Eventually(t, func() bool { return b.Stats().InboundConns == 0 }, waitTimeout, pollEvery)
	require.Equal(t, uint64(1), b.Stats().IdleTimeouts)
}

// TestSlowFrameIsCutByReadTimeout: a sender that announces a frame and
// trickles its bytes, one every few milliseconds (never idle), is cut once
// the frame has not arrived within ReadTimeout per started MiB.
func TestSlowFrameIsCutByReadTimeout(t *testing.T) {
	b := startNode(t, "b", func(c *Config) {
		c.IdleTimeout = time.Minute
		c.ReadTimeout = 200 * time.Millisecond
	})
	c, br := helloFrom(t, "127.0.0.1", b.Addr(), "a")
	require.True(t, answered(t, c, br))
	_, err := c.Write(binary.BigEndian.AppendUint32(nil, 1<<20))
	require.NoError(t, err)
	stop := make(chan struct{})
	var trickle sync.WaitGroup
	trickle.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := c.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}
	})
	defer trickle.Wait()
	defer close(stop)
	waitClosed(t, c, br)
	require.Eventually(t, func() bool { return b.Stats().ReadTimeouts == 1 }, waitTimeout, pollEvery)
	require.Zero(t, b.Stats().IdleTimeouts)
	require.Zero(t, b.Stats().ReassemblyBytes, "the cut frame's memory is given back")
}

// TestReassemblyBudgetBoundsPartialMessages: eight connections each send
// 31 MiB of a 32 MiB frame and stop. The node's budget for partial
// messages (64 MiB) holds two of them; the connections whose message would
// pass it are closed and counted, and the heap grows by no more than the
// budget plus the connections' buffers.
func TestReassemblyBudgetBoundsPartialMessages(t *testing.T) {
	const (
		conns  = 8
		frame  = 32 << 20
		sent   = frame - 1<<20
		budget = 64 << 20
	)
	b := startNode(t, "b", func(c *Config) {
		c.MaxFrameSize, c.MaxMessageSize, c.MaxReassemblySize = frame, frame, budget
		c.ReadTimeout = time.Minute // the partial frames stay until the test ends
	})
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	chunk := make([]byte, 1<<20)
	var senders sync.WaitGroup
	for i := range conns {
		c, br := helloFrom(t, "127.0.0.1", b.Addr(), fmt.Sprintf("sender-%d", i))
		require.True(t, answered(t, c, br))
		senders.Go(func() {
			if _, err := c.Write(binary.BigEndian.AppendUint32(nil, frame)); err != nil {
				return
			}
			for range sent / len(chunk) {
				if _, err := c.Write(chunk); err != nil {
					return // refused
				}
			}
		})
	}
	// Every sender has written all it will or was refused.
	senders.Wait()
	// Settled: every connection still open holds its whole frame's buffer
	// (it grows to the announced 32 MiB once past 16 MiB), and the others
	// were refused.
	var st Stats
	require.Eventually(t, func() bool {
		st = b.Stats()
		return st.InboundConns < conns && st.ReassemblyBytes == st.InboundConns*frame &&
			st.BudgetRefusals == uint64(conns-st.InboundConns)
	}, waitTimeout, pollEvery, "partial messages never settled within the budget")
	require.LessOrEqual(t, st.ReassemblyBytes, budget)
	require.GreaterOrEqual(t, st.BudgetRefusals, uint64(conns-budget/frame))
	require.NotEmpty(t, b.logs.errorsLogged("transport: partial messages hold the whole reassembly budget, closing connection"))

	// Live heap: the budget, the connections' read buffers and some slack.
	// Polled, since a reader may still be dropping the buffer it grew out
	// of.
	limit := int64(budget + conns*readBufSize + 8<<20)
	var grown int64
	require.Eventually(t, func() bool {
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		grown = int64(after.HeapAlloc) - int64(before.HeapAlloc)
		return grown <= limit
	}, waitTimeout, 50*time.Millisecond, "the live heap grew by more than the budget")
	t.Logf("live heap grew by %d MiB with %d MiB held by %d connections", grown>>20, st.ReassemblyBytes>>20, st.InboundConns)
}

// TestReplicationSurvivesIdlePeriodsLongerThanIdleTimeout: two real
// transports with a short idle timeout stay connected through quiet
// periods several times that long (the dialer's keepalives), and every
// frame sent before, between and after them arrives on the one connection.
func TestReplicationSurvivesIdlePeriodsLongerThanIdleTimeout(t *testing.T) {
	const idle = time.Second
	short := func(c *Config) { c.IdleTimeout = idle }
	a := startNode(t, "a", short)
	b := startNode(t, "b", short)
	a.SetPeer("b", b.Addr())
	for round := range 3 {
		for i := range 20 {
			require.NoError(t, a.Send("b", fmt.Appendf(nil, "%d/%d", round, i)))
		}
		for i := range 20 {
			require.Equal(t, received{from: "a", frame: fmt.Sprintf("%d/%d", round, i)}, b.in.next(t))
		}
		// Quiet for at least twice the idle timeout: keepalives come at
		// most every two intervals of a third of it.
		want := b.Stats().KeepalivesIn + 6
		require.Eventually(t, func() bool { return b.Stats().KeepalivesIn >= want }, waitTimeout, pollEvery)
	}
	// The receiver's counters first: a keepalive sent between the two
	// reads then counts on the sender's side only. The sender counts a
	// keepalive once its flush returns, which can be after the receiver
	// counted it: every one the receiver counted is counted by the sender
	// within the wait.
	bs := b.Stats()
	as := a.Stats()
	require.Zero(t, as.Reconnects, "reconnects")
	require.Zero(t, as.FramesLost, "frames lost")
	require.Zero(t, bs.IdleTimeouts, "idle timeouts")
	require.Equal(t, uint64(60), bs.FramesIn)
	require.Eventually(t, func() bool { return a.Stats().KeepalivesOut >= bs.KeepalivesIn }, waitTimeout, pollEvery,
		"keepalives: %d counted by the receiver, %d by the sender", bs.KeepalivesIn, as.KeepalivesOut)
}

// TestWriteTimeoutDisconnectsAPeerThatStopsReading: a peer that answers
// the handshake and never reads is disconnected once a write has waited
// WriteTimeout, and the writer redials; the timeout is counted.
func TestWriteTimeoutDisconnectsAPeerThatStopsReading(t *testing.T) {
	peer := newFakePeer(t, "b")
	a := startNode(t, "a", func(c *Config) {
		c.WriteTimeout = 100 * time.Millisecond
		c.QueueSize = 4
	})
	a.SetPeer("b", peer.addr())
	a.waitConnected(t, "b", true)
	big := bytes.Repeat([]byte{1}, 1<<20)
	require.Eventually(t, func() bool {
		_ = a.Send("b", big) // fills the socket buffers, then the queue
		return a.Stats().WriteTimeouts > 0
	}, waitTimeout, pollEvery)
	logged := a.logs.errorsLogged("transport: peer stopped reading, closing connection")
	require.NotEmpty(t, logged)
	require.ErrorIs(t, logged[0], os.ErrDeadlineExceeded)
	a.RemovePeer("b") // nothing left to flush on Close
}

// TestReassemblyBudgetIsSharedAndGivenBack: two readers share one budget;
// a message that does not fit while another is held is refused with a
// *BudgetError, and fits once the first is released. A small one-frame
// message passes a full budget. A message cut short gives its share back
// at once.
func TestReassemblyBudgetIsSharedAndGivenBack(t *testing.T) {
	shared := &budget{limit: 256 << 10}
	reader := func(in []byte) *msgReader {
		return &msgReader{r: bytes.NewReader(in), maxFrame: 1 << 20, maxMessage: 1 << 20, budget: shared}
	}
	first := reader(fragmented(t, 1<<20, make([]byte, 100<<10)))
	msg, err := first.next()
	require.NoError(t, err)
	require.Len(t, msg, 100<<10)
	require.Equal(t, 100<<10, shared.inUse(), "a delivered message holds its size until released")

	in := fragmented(t, 1<<20, make([]byte, 200<<10))
	_, err = reader(in).next()
	var be *BudgetError
	require.ErrorAs(t, err, &be)
	require.ErrorIs(t, err, ErrReassemblyBudget)
	require.Equal(t, 256<<10, be.Limit)
	require.Equal(t, 100<<10, shared.inUse(), "the refused message gave its share back")

	require.True(t, shared.reserve(shared.limit-shared.inUse()), "fill the budget")
	msg, err = reader(fragmented(t, 1<<20, []byte("small"))).next()
	require.NoError(t, err, "a one-frame message of at most 64 KiB is not charged")
	require.Equal(t, "small", string(msg))
	shared.release(shared.limit - 100<<10)

	first.release()
	second := reader(in)
	msg, err = second.next()
	require.NoError(t, err)
	require.Len(t, msg, 200<<10)
	second.release()

	_, err = reader(in[:150<<10]).next()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Zero(t, shared.inUse(), "a message cut short gave its share back")
}
