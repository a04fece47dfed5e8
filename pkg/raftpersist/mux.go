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

	"github.com/dstate-go/dstate/internal/backoff"
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
//
// An accepted connection is refused (closed) when the listener already
// holds maxConns connections or its remote IP maxPerHost; when its TLS
// handshake and prelude do not complete within timeout; when its
// certificate does not name the announced node ID; and when admit refuses
// the announced node ID. Once served, it is closed after idle without
// traffic. Each refusal is counted in refused and warned about at most once
// per remote IP and kind per warn interval.
type mux struct {
	id        string // this node's ID, announced when dialing
	ln        net.Listener
	advertise net.Addr
	serverTLS *tls.Config
	clientTLS *tls.Config
	timeout   time.Duration // handshake and dial timeout
	limits    muxLimits
	log       *slog.Logger
	refused   *refusalCounters
	serve     func(c net.Conn, peer string) // forwarding connections; runs on the accepting goroutine

	raftCh chan net.Conn
	closed chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	mu      sync.Mutex
	conns   map[*trackedConn]struct{}
	inbound int            // accepted connections open
	perHost map[string]int // accepted connections open, by remote IP

	warnLog ratelog.Limiter
}

// muxLimits are the limits on accepted connections (see Config).
type muxLimits struct {
	idle       time.Duration
	maxConns   int
	maxPerHost int
	warnEvery  time.Duration
	// admit returns why a node ID may not connect, or "" when it may.
	admit func(id string) string
}

func newMux(id string, ln net.Listener, advertise net.Addr, serverTLS, clientTLS *tls.Config, timeout time.Duration,
	limits muxLimits, refused *refusalCounters, log *slog.Logger) *mux {
	return &mux{
		id: id, ln: ln, advertise: advertise, serverTLS: serverTLS, clientTLS: clientTLS, timeout: timeout,
		limits: limits, refused: refused, log: log,
		raftCh: make(chan net.Conn), closed: make(chan struct{}), conns: map[*trackedConn]struct{}{},
		perHost: map[string]int{}, warnLog: ratelog.Limiter{Interval: limits.warnEvery},
	}
}

// start begins accepting; serve handles forwarding connections from the
// node peer.
func (m *mux) start(serve func(c net.Conn, peer string)) {
	m.serve = serve
	m.wg.Add(1)
	go m.acceptLoop()
}

func (m *mux) acceptLoop() {
	defer m.wg.Done()
	retry := backoff.Backoff{Policy: backoff.Policy{Min: 5 * time.Millisecond, Max: time.Second}}
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
				select {
				case <-time.After(retry.Next()):
					continue
				case <-m.closed:
					return
				}
			}
			m.log.Error("raftpersist: accept failed; listener stopped", "err", err)
			return
		}
		retry.Reset()
		tc, reason := m.trackInbound(c)
		if tc == nil {
			if reason != "" {
				m.refuse(c.RemoteAddr(), reason, "raftpersist: refused a connection over the connection limit",
					"limit", map[string]int{refuseMaxConns: m.limits.maxConns, refuseMaxConnsPerHost: m.limits.maxPerHost}[reason])
			}
			_ = c.Close()
			continue
		}
		m.wg.Add(1)
		go m.handshake(tc)
	}
}

// refuse counts a refusal for reason and warns about it, at most once per
// remote IP and reason per interval.
func (m *mux) refuse(remote net.Addr, reason, msg string, args ...any) {
	m.refused.add(reason)
	host := hostOf(remote)
	if ok, suppressed := m.warnLog.Allow(host + "\x00" + reason); ok {
		args = append(args, "remote", remote.String(), "reason", reason)
		if suppressed > 0 {
			args = append(args, "suppressed", suppressed)
		}
		m.log.Warn(msg, args...)
	}
}

func (m *mux) handshake(tc *trackedConn) {
	defer m.wg.Done()
	var c net.Conn = tc
	// The TLS handshake and the prelude must complete within the timeout.
	_ = c.SetDeadline(time.Now().Add(m.timeout))
	if m.serverTLS != nil {
		t := tls.Server(c, m.serverTLS)
		if err := t.Handshake(); err != nil {
			m.refuse(c.RemoteAddr(), refuseHandshake, "raftpersist: TLS handshake failed", "err", err)
			_ = c.Close()
			return
		}
		c = t
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		m.refuse(c.RemoteAddr(), refuseHandshake, "raftpersist: connection ended before its prelude", "err", err)
		_ = c.Close()
		return
	}
	id := make([]byte, b[1])
	if _, err := io.ReadFull(c, id); err != nil {
		m.refuse(c.RemoteAddr(), refuseHandshake, "raftpersist: connection ended before its prelude", "err", err)
		_ = c.Close()
		return
	}
	if len(id) == 0 {
		m.refuse(c.RemoteAddr(), refuseHandshake, "raftpersist: refused a connection announcing an empty node ID")
		_ = c.Close()
		return
	}
	if t, ok := c.(*tls.Conn); ok {
		if reason := certid.Mismatch(t.ConnectionState(), string(id)); reason != "" {
			m.refuse(c.RemoteAddr(), refuseHandshake, "raftpersist: refused a connection: "+reason)
			_ = c.Close()
			return
		}
	}
	if b[0] != protoRaft && b[0] != protoForward {
		m.refuse(c.RemoteAddr(), refuseUnknownProtocol, "raftpersist: unknown protocol byte; closing", "byte", b[0])
		_ = c.Close()
		return
	}
	if m.limits.admit != nil {
		if why := m.limits.admit(string(id)); why != "" {
			m.refuse(c.RemoteAddr(), refuseUnknownNode, "raftpersist: refused a connection: "+why, "node", string(id))
			_ = c.Close()
			return
		}
	}
	_ = c.SetDeadline(time.Time{})
	if m.limits.idle > 0 {
		c = &idleConn{Conn: c, idle: m.limits.idle, onIdle: func() { m.refused.add(refuseIdle) }}
	}
	switch b[0] {
	case protoRaft:
		select {
		case m.raftCh <- c:
		case <-m.closed:
			_ = c.Close()
		}
	case protoForward:
		m.serve(c, string(id))
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

// track registers a dialed connection c, or closes it and returns nil when
// the mux is closed.
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

// trackInbound registers an accepted connection c. It returns nil when the
// mux is closed (reason "") or the listener or c's remote IP holds its
// limit of connections (reason the refusal's); the caller then closes c.
func (m *mux) trackInbound(c net.Conn) (*trackedConn, string) {
	host := hostOf(c.RemoteAddr())
	m.mu.Lock()
	defer m.mu.Unlock()
	reason := ""
	select {
	case <-m.closed:
	default:
		switch {
		case m.limits.maxConns > 0 && m.inbound >= m.limits.maxConns:
			reason = refuseMaxConns
		case m.limits.maxPerHost > 0 && m.perHost[host] >= m.limits.maxPerHost:
			reason = refuseMaxConnsPerHost
		default:
			m.inbound++
			m.perHost[host]++
			tc := &trackedConn{Conn: c, m: m, inbound: true, host: host}
			m.conns[tc] = struct{}{}
			return tc, ""
		}
	}
	return nil, reason
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
			_ = c.Close()
		}
	})
	m.wg.Wait()
	return err
}

// trackedConn removes itself from the mux when closed; an accepted one
// also gives back its place under the connection limits.
type trackedConn struct {
	net.Conn
	m       *mux
	inbound bool
	host    string
	once    sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.m.mu.Lock()
		delete(c.m.conns, c)
		if c.inbound {
			c.m.inbound--
			if c.m.perHost[c.host]--; c.m.perHost[c.host] <= 0 {
				delete(c.m.perHost, c.host)
			}
		}
		c.m.mu.Unlock()
	})
	return c.Conn.Close()
}

// idleConn is an accepted connection that ends when nothing arrives for
// idle: each Read waits at most idle, and a Read that times out closes the
// connection and reports io.EOF, so raft's transport ends it quietly. Each
// Write may take at most idle too. Time spent between reads (serving a
// request) does not count.
type idleConn struct {
	net.Conn
	idle   time.Duration
	onIdle func()
	once   sync.Once
}

func (c *idleConn) Read(b []byte) (int, error) {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Read(b)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		c.once.Do(c.onIdle)
		_ = c.Conn.Close()
		if n == 0 {
			err = io.EOF
		}
	}
	return n, err
}

func (c *idleConn) Write(b []byte) (int, error) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
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
