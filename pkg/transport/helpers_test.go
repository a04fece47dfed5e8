package transport

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitTimeout bounds every wait in the tests; nothing waits this long when
// the code works.
const waitTimeout = 10 * time.Second

// pollEvery is the polling interval of require.Eventually.
const pollEvery = 5 * time.Millisecond

// received is one delivered frame.
type received struct {
	from  dstate.NodeID
	frame string
}

// inbox collects the frames a transport delivers.
type inbox chan received

// next returns the next delivered frame, failing the test after waitTimeout.
func (in inbox) next(t testing.TB) received {
	t.Helper()
	select {
	case r := <-in:
		return r
	case <-time.After(waitTimeout):
		t.Fatalf("no frame delivered within %s", waitTimeout)
		return received{}
	}
}

// testNode is a transport under test with its inbox and captured logs.
type testNode struct {
	*Transport
	in   inbox
	logs *logSink
}

// newNode builds a transport with fast test defaults, applies mutate to its
// config, and closes it when the test ends. It does not start it.
func newNode(t testing.TB, id string, mutate func(*Config)) *testNode {
	t.Helper()
	logs := newLogSink(t)
	cfg := Config{
		NodeID:              dstate.NodeID(id),
		ClusterName:         "test",
		BindAddr:            "127.0.0.1:0",
		ReconnectBackoffMin: 5 * time.Millisecond,
		ReconnectBackoffMax: 50 * time.Millisecond,
		Logger:              slog.New(logs),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	tr, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := tr.Close(ctx); err != nil {
			t.Errorf("close %s: %v", id, err)
		}
	})
	return &testNode{Transport: tr, in: make(inbox, 20000), logs: logs}
}

// startNode is newNode followed by Start with the node's inbox.
func startNode(t testing.TB, id string, mutate func(*Config)) *testNode {
	t.Helper()
	n := newNode(t, id, mutate)
	n.start(t)
	return n
}

func (n *testNode) start(t testing.TB) {
	t.Helper()
	require.NoError(t, n.Start(func(from dstate.NodeID, frame []byte) {
		n.in <- received{from: from, frame: string(frame)}
	}))
}

// peerError waits until the node's writer to peer reports an error of type
// *HandshakeError and returns it.
func (n *testNode) peerHandshakeError(t testing.TB, peer dstate.NodeID) *HandshakeError {
	t.Helper()
	var herr *HandshakeError
	require.Eventually(t, func() bool {
		return errors.As(n.PeerStats()[peer].LastError, &herr)
	}, waitTimeout, pollEvery, "no handshake error for peer %s", peer)
	return herr
}

// waitConnected waits until the node's writer to peer is connected.
func (n *testNode) waitConnected(t testing.TB, peer dstate.NodeID, want bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		return n.PeerStats()[peer].Connected == want
	}, waitTimeout, pollEvery, "peer %s never reached connected=%v", peer, want)
}

// freeAddr returns a loopback address with nothing listening.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// rawDial connects to addr without a transport, sends msg (usually a hand
// built hello) and returns the connection and a reader on it.
func rawDial(t testing.TB, addr string, msg []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitTimeout)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(waitTimeout)))
	_, err = c.Write(msg)
	require.NoError(t, err)
	return c, bufio.NewReader(c)
}

// fakePeer is a hand-written acceptor: it answers every hello with its own
// and then never reads, so writes to it eventually block.
type fakePeer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newFakePeer(t testing.TB, id string) *fakePeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakePeer{ln: ln}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			if _, err := readHandshake(bufio.NewReader(c)); err != nil {
				continue
			}
			_, _ = c.Write(appendHello(nil, ProtocolVersion, "test", id))
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		f.wg.Wait()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			_ = c.Close()
		}
	})
	return f
}

func (f *fakePeer) addr() string { return f.ln.Addr().String() }

// logSink is a slog.Handler that keeps every record; a failed test prints
// them.
type logSink struct {
	mu      sync.Mutex
	records []slog.Record
	attrs   []slog.Attr
	parent  *logSink
}

func newLogSink(t testing.TB) *logSink {
	s := &logSink{}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range s.all() {
				t.Logf("log: %s %s %v", r.Level, r.Message, recordAttrs(r))
			}
		}
	})
	return s
}

func (s *logSink) root() *logSink {
	if s.parent != nil {
		return s.parent
	}
	return s
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(s.attrs...)
	root := s.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	root.records = append(root.records, r)
	return nil
}

func (s *logSink) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logSink{parent: s.root(), attrs: append(append([]slog.Attr(nil), s.attrs...), attrs...)}
}

func (s *logSink) WithGroup(string) slog.Handler { return s }

func (s *logSink) all() []slog.Record {
	root := s.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	return append([]slog.Record(nil), root.records...)
}

// errorsLogged returns the "err" attributes of the records with message msg.
func (s *logSink) errorsLogged(msg string) []error {
	var errs []error
	for _, r := range s.all() {
		if r.Message != msg {
			continue
		}
		if err, ok := recordAttrs(r)["err"].(error); ok {
			errs = append(errs, err)
		}
	}
	return errs
}

// waitLoggedError waits for a record with message msg whose error matches
// target (errors.Is) and returns it.
func (s *logSink) waitLoggedError(t testing.TB, msg string, target error) error {
	t.Helper()
	var found error
	require.Eventually(t, func() bool {
		for _, err := range s.errorsLogged(msg) {
			if errors.Is(err, target) {
				found = err
				return true
			}
		}
		return false
	}, waitTimeout, pollEvery, "no %q log with an error matching %v", msg, target)
	return found
}

func recordAttrs(r slog.Record) map[string]any {
	m := map[string]any{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.Any()
		return true
	})
	return m
}
