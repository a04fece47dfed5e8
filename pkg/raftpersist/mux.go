package raftpersist

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dstate-go/dstate/internal/certid"
	"github.com/dstate-go/dstate/internal/ratelog"
)

// Every connection to a store's listener starts (inside TLS, when
// configured) with one byte naming its protocol, then the dialer's node ID
// (one length byte and the ID). With mutual TLS the acceptor refuses a
// connection whose certificate does not name that node ID.
const (
	protoRaft    byte = 'R'
	protoForward byte = 'F'
)

// mux owns the store's listener: it accepts connections, runs the TLS
// handshake, reads the protocol byte and hands raft connections to the raft
// stream layer and forwarding connections to serve. It tracks every
// connection it accepted or dialed so Close can end them all.
type mux struct {
	id        string // this node's ID, announced when dialing
	ln        net.Listener
	advertise net.Addr
	serverTLS *tls.Config
	clientTLS *tls.Config
	timeout   time.Duration // handshake and dial timeout
	log       *slog.Logger
	serve     func(net.Conn) // forwarding connections; runs on the accepting goroutine

	raftCh chan net.Conn
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[*trackedConn]struct{}

	warnLog ratelog.Limiter
}

func newMux(id string, ln net.Listener, advertise net.Addr, serverTLS, clientTLS *tls.Config, timeout time.Duration, log *slog.Logger) *mux {
	return &mux{
		id: id, ln: ln, advertise: advertise, serverTLS: serverTLS, clientTLS: clientTLS, timeout: timeout, log: log,
		raftCh: make(chan net.Conn), closed: make(chan struct{}), conns: map[*trackedConn]struct{}{},
	}
}

// start begins accepting; serve handles forwarding connections.
func (m *mux) start(serve func(net.Conn)) {
	m.serve = serve
	m.wg.Add(1)
	go m.acceptLoop()
}

func (m *mux) acceptLoop() {
	defer m.wg.Done()
	var delay time.Duration
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-m.closed:
					return
				}
			}
			m.log.Error("raftpersist: accept failed; listener stopped", "err", err)
			return
		}
		delay = 0
		tc := m.track(c)
		if tc == nil {
			continue
		}
		m.wg.Add(1)
		go m.handshake(tc)
	}
}

func (m *mux) handshake(tc *trackedConn) {
	defer m.wg.Done()
	var c net.Conn = tc
	_ = c.SetDeadline(time.Now().Add(m.timeout))
	if m.serverTLS != nil {
		t := tls.Server(c, m.serverTLS)
		if err := t.Handshake(); err != nil {
			m.warnOnce(c.RemoteAddr().String(), "raftpersist: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			_ = c.Close()
			return
		}
		c = t
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		_ = c.Close()
		return
	}
	id := make([]byte, b[1])
	if _, err := io.ReadFull(c, id); err != nil {
		_ = c.Close()
		return
	}
	if t, ok := c.(*tls.Conn); ok {
		if reason := certid.Mismatch(t.ConnectionState(), string(id)); reason != "" {
			m.warnOnce(c.RemoteAddr().String(), "raftpersist: refused a connection: "+reason, "remote", c.RemoteAddr().String())
			_ = c.Close()
			return
		}
	}
	_ = c.SetDeadline(time.Time{})
	switch b[0] {
	case protoRaft:
		select {
		case m.raftCh <- c:
		case <-m.closed:
			_ = c.Close()
		}
	case protoForward:
		m.serve(c)
	default:
		m.log.Warn("raftpersist: unknown protocol byte; closing", "remote", c.RemoteAddr().String(), "byte", b[0])
		_ = c.Close()
	}
}

// warnOnce logs a warning about a remote address at most once per host and
// message per minute.
func (m *mux) warnOnce(remote, msg string, args ...any) {
	host, _, _ := net.SplitHostPort(remote)
	if ok, suppressed := m.warnLog.Allow(host + "\x00" + msg); ok {
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
		m.log.Warn(msg, args...)
	}
}

// dial connects to addr and announces proto and this node's ID.
func (m *mux) dial(addr string, proto byte, timeout time.Duration) (net.Conn, error) {
	select {
	case <-m.closed:
		return nil, ErrClosed
	default:
	}
	if timeout <= 0 || timeout > m.timeout {
		timeout = m.timeout
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raftpersist: dial %s: %w", addr, err)
	}
	tc := m.track(raw)
	if tc == nil {
		return nil, ErrClosed
	}
	var c net.Conn = tc
	_ = c.SetDeadline(time.Now().Add(timeout))
	if m.clientTLS != nil {
		cfg := m.clientTLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			host, _, _ := net.SplitHostPort(addr)
			cfg.ServerName = host
		}
		t := tls.Client(c, cfg)
		if err := t.Handshake(); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("raftpersist: TLS handshake with %s: %w", addr, err)
		}
		c = t
	}
	if _, err := c.Write(append([]byte{proto, byte(len(m.id))}, m.id...)); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raftpersist: dial %s: %w", addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// track registers c, or closes it and returns nil when the mux is closed.
func (m *mux) track(c net.Conn) *trackedConn {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.closed:
		_ = c.Close()
		return nil
	default:
	}
	tc := &trackedConn{Conn: c, m: m}
	m.conns[tc] = struct{}{}
	return tc
}

// close stops accepting and closes every tracked connection, then waits for
// the mux's goroutines (forwarding handlers included).
func (m *mux) close() error {
	var err error
	m.once.Do(func() {
		m.mu.Lock()
		close(m.closed)
		conns := m.conns
		m.conns = map[*trackedConn]struct{}{}
		m.mu.Unlock()
		err = m.ln.Close()
		for c := range conns {
			_ = c.Conn.Close()
		}
	})
	m.wg.Wait()
	return err
}

// trackedConn removes itself from the mux when closed.
type trackedConn struct {
	net.Conn
	m    *mux
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.m.mu.Lock()
		delete(c.m.conns, c)
		c.m.mu.Unlock()
	})
	return c.Conn.Close()
}

// raftLayer is the raft.StreamLayer over the mux.
type raftLayer struct {
	m      *mux
	closed chan struct{}
	once   sync.Once
}

var _ raft.StreamLayer = (*raftLayer)(nil)

// Accept returns the next raft connection.
func (l *raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.closed:
		return nil, ErrClosed
	case <-l.m.closed:
		return nil, ErrClosed
	}
}

// Close stops Accept; the listener itself is closed by the store.
func (l *raftLayer) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// Addr returns the advertised address, which raft uses as its own.
func (l *raftLayer) Addr() net.Addr { return l.m.advertise }

// Dial opens a raft connection to address.
func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.m.dial(string(address), protoRaft, timeout)
}
