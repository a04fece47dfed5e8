package raftpersist

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
)

// recorder is a slog.Handler that keeps every message.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// count returns how many messages contain s.
func (r *recorder) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if strings.Contains(m, s) {
			n++
		}
	}
	return n
}

// dialFrom opens a TCP connection to addr from the loopback IP src and,
// when proto is not 0, sends the prelude announcing node ID id.
func dialFrom(t *testing.T, src, addr string, proto byte, id string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	if proto != 0 {
		_, err = conn.Write(append([]byte{proto, byte(len(id))}, id...))
		require.NoError(t, err)
	}
	return conn
}

// closedByPeer reports whether the server has closed conn: a read that
// waits at most wait returns EOF (or a reset) rather than timing out.
func closedByPeer(conn net.Conn, wait time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	var b [1]byte
	_, err := conn.Read(b[:])
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// requireClosed waits until the server closes conn.
func requireClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool { return closedByPeer(conn, 20*time.Millisecond) }, "%s to be closed", what)
}

// requireOpen checks that the server has not closed conn.
func requireOpen(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	require.False(t, closedByPeer(conn, 20*time.Millisecond), "%s was closed", what)
}

// TestConnectionsPerHostAreCapped: past MaxConnsPerHost, connections from
// one IP are closed as they arrive, while the servers' own connections
// (from another IP) are unaffected and the cluster keeps working.
func TestConnectionsPerHostAreCapped(t *testing.T) {
	const perHost = 8
	c := newCluster(t, 3, func(_ int, cfg *Config) { cfg.MaxConnsPerHost = perHost })
	leader := c.node(c.leader())
	var held []net.Conn
	for range perHost {
		held = append(held, dialFrom(t, "127.0.0.2", leader.Addr(), protoRaft, "idle"))
	}
	for i := range 4 {
		requireClosed(t, dialFrom(t, "127.0.0.2", leader.Addr(), protoRaft, "idle"), "a connection over the per-host limit")
		require.Equal(t, uint64(i+1), leader.Refusals().MaxConnsPerHost)
	}
	for _, conn := range held {
		requireOpen(t, conn, "a connection within the limit")
	}
	ctx := ctxT(t, 10*time.Second)
	f := followers(c)[0]
	require.NoError(t, stateOf(f, "s").Save(ctx, obj(1, 1, "still works"), nil))

	// A closed connection frees its place.
	require.NoError(t, held[0].Close())
	eventually(t, 10*time.Second, func() bool {
		conn := dialFrom(t, "127.0.0.2", leader.Addr(), protoRaft, "idle")
		defer conn.Close()
		return !closedByPeer(conn, 50*time.Millisecond)
	}, "a new connection to be held once one closed")
}

// TestListenerConnectionsAreCapped: past MaxConns, connections from any IP
// are closed as they arrive.
func TestListenerConnectionsAreCapped(t *testing.T) {
	c := newCluster(t, 1, func(_ int, cfg *Config) { cfg.MaxConns, cfg.MaxConnsPerHost = 6, 4 })
	s := c.node(0)
	c.leader()
	for range 4 {
		requireOpen(t, dialFrom(t, "127.0.0.2", s.Addr(), protoRaft, "a"), "a connection within both limits")
	}
	requireClosed(t, dialFrom(t, "127.0.0.2", s.Addr(), protoRaft, "a"), "a fifth connection from one IP")
	for range 2 {
		requireOpen(t, dialFrom(t, "127.0.0.3", s.Addr(), protoRaft, "b"), "a connection within both limits")
	}
	requireClosed(t, dialFrom(t, "127.0.0.3", s.Addr(), protoRaft, "b"), "a seventh connection")
	r := s.Refusals()
	require.Equal(t, uint64(1), r.MaxConnsPerHost)
	require.Equal(t, uint64(1), r.MaxConns)
}

// TestIdleConnectionsAreClosed: a raft or forwarding connection that sends
// nothing after its prelude is closed after IdleTimeout, one that never
// sends its prelude after DialTimeout; a follower's pooled forwarding
// connection is closed too when it idles, and saves keep working across
// those closures (raft's own heartbeats and pipelines never idle that long).
func TestIdleConnectionsAreClosed(t *testing.T) {
	c := newCluster(t, 3, func(_ int, cfg *Config) {
		cfg.IdleTimeout = 400 * time.Millisecond
		cfg.DialTimeout = 400 * time.Millisecond
	})
	leader := c.node(c.leader())
	idleRaft := dialFrom(t, "127.0.0.2", leader.Addr(), protoRaft, "idle")
	idleForward := dialFrom(t, "127.0.0.2", leader.Addr(), protoForward, "idle")
	silent := dialFrom(t, "127.0.0.2", leader.Addr(), 0, "")
	requireClosed(t, idleRaft, "an idle raft connection")
	requireClosed(t, idleForward, "an idle forwarding connection")
	requireClosed(t, silent, "a connection without a prelude")
	require.GreaterOrEqual(t, leader.Refusals().Idle, uint64(2))
	require.GreaterOrEqual(t, leader.Refusals().Handshake, uint64(1))

	ctx := ctxT(t, 20*time.Second)
	idle := func() (n uint64) {
		for i := range c.nodes {
			n += c.node(i).Refusals().Idle
		}
		return n
	}
	for age := range uint64(3) {
		f := followers(c)[0]
		require.NoError(t, stateOf(f, "s").Save(ctx, obj(1, age+1, "x"), nil))
		// Wait until the follower's pooled forwarding connection has idled
		// out, so the next save needs a new one.
		before := idle()
		eventually(t, 10*time.Second, func() bool { return idle() > before }, "the forwarding connection to idle out")
	}
	f := followers(c)[0]
	require.NoError(t, stateOf(f, "s").Save(ctx, obj(1, 9, "after idling"), nil))
	got, err := stateOf(f, "s").Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "after idling", got.Value)
}

// TestUnknownProtocolWarningIsRateLimited: a burst of connections naming
// an unknown protocol is refused and counted one by one, but warned about
// once per interval.
func TestUnknownProtocolWarningIsRateLimited(t *testing.T) {
	rec := &recorder{}
	c := newCluster(t, 1, func(_ int, cfg *Config) { cfg.Logger = slog.New(rec) })
	s := c.node(0)
	c.leader()
	const n = 20
	for range n {
		requireClosed(t, dialFrom(t, "127.0.0.2", s.Addr(), 'X', "x"), "a connection of an unknown protocol")
	}
	eventually(t, 5*time.Second, func() bool { return s.Refusals().UnknownProtocol == n }, "%d refusals to be counted", n)
	require.Equal(t, 1, rec.count("unknown protocol byte"), "one warning for the burst")
}

// hugeTimeAppendEntries is a raft AppendEntries RPC (its type byte, then
// the msgpack request) of 28 bytes: {"Entries": [{"AppendedAt": str32 of
// 2 GiB}]}. An unpatched go-msgpack allocates the declared 2 GiB before
// reading them.
var hugeTimeAppendEntries = []byte{
	0, // rpcAppendEntries
	0x81, 0xa7, 'E', 'n', 't', 'r', 'i', 'e', 's',
	0x91, 0x81, 0xaa, 'A', 'p', 'p', 'e', 'n', 'd', 'e', 'd', 'A', 't',
	0xdb, 0x80, 0, 0, 0,
}

func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// TestRaftPortRefusesAHugeTimeLength: the 28-byte AppendEntries whose time
// declares 2 GiB, sent on a raft connection, makes the server allocate
// nothing large (measured while the connection is open, until the server
// closes it) and the server keeps serving.
func TestRaftPortRefusesAHugeTimeLength(t *testing.T) {
	require.Len(t, hugeTimeAppendEntries, 28)
	c := newCluster(t, 1, nil)
	s := c.node(0)
	c.leader()
	conn := dialFrom(t, "127.0.0.1", s.Addr(), protoRaft, "probe")
	const bound = 64 << 20
	before := totalAlloc()
	_, err := conn.Write(hugeTimeAppendEntries)
	require.NoError(t, err)
	var grown uint64
	eventually(t, 10*time.Second, func() bool {
		grown = totalAlloc() - before
		return grown > bound || closedByPeer(conn, 20*time.Millisecond)
	}, "the server to close the connection")
	require.Less(t, grown, uint64(bound), "allocated %d MiB for 28 bytes", grown>>20)
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, stateOf(s, "s").Save(ctx, obj(1, 1, "still up"), nil))
}

// TestCodecRefusesAHugeTimeLength decodes the same request the way raft's
// transport does, from a stream.
func TestCodecRefusesAHugeTimeLength(t *testing.T) {
	var req raft.AppendEntriesRequest
	var err error
	in := hugeTimeAppendEntries[1:]
	fuzzcheck.Alloc(t, "decode", 0, len(in), 64, func() {
		dec := codec.NewDecoder(bufio.NewReader(io.MultiReader(bytes.NewReader(in))), &codec.MsgpackHandle{})
		err = dec.Decode(&req)
	})
	require.Error(t, err, "a time of 2 GiB must not decode")
}
