package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/dstate-go/dstate/internal/certid"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// link is one established outbound connection.
type link struct {
	addr string
	raw  net.Conn // the TCP connection
	conn net.Conn // raw, or the TLS connection over it
	br   *bufio.Reader
	dead chan struct{} // closed when watch returns
	now  *nowWriter    // direct writes on plain TCP (nil over TLS or where unavailable)
}

// watch waits for the remote to close the connection. The acceptor never
// writes after the handshake, so any read result means the link is over.
func (l *link) watch() {
	defer close(l.dead)
	_, _ = l.br.ReadByte()
}

// dial connects to addr and runs the client handshake, expecting node id.
func (t *Transport) dial(ctx context.Context, id dstate.NodeID, addr string) (*link, error) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.stats.dialFailures.Add(1)
		return nil, fmt.Errorf("transport: %w", err)
	}
	if !t.track(raw) {
		_ = raw.Close()
		return nil, ErrClosed
	}
	l := &link{addr: addr, raw: raw, conn: raw, dead: make(chan struct{})}
	if err := t.clientHandshake(ctx, l, id); err != nil {
		_ = raw.Close()
		t.untrack(raw)
		if ctx.Err() == nil {
			t.stats.handshakeFailures.Add(1)
		}
		return nil, err
	}
	return l, nil
}

// clientHandshake runs the optional TLS handshake, sends our hello and
// reads the acceptor's hello or refusal.
func (t *Transport) clientHandshake(ctx context.Context, l *link, id dstate.NodeID) error {
	fail := func(kind error, format string, args ...any) error {
		return &HandshakeError{Addr: l.addr, Peer: id, Reason: fmt.Sprintf(format, args...), Err: kind}
	}
	_ = l.raw.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	if t.cfg.TLS != nil {
		tc := tls.Client(l.raw, t.clientTLS(l.addr))
		if err := tc.HandshakeContext(ctx); err != nil {
			return &HandshakeError{Addr: l.addr, Peer: id, Err: fmt.Errorf("tls: %w", err)}
		}
		l.conn = tc
	}
	if _, err := l.conn.Write(appendHello(nil, t.version, t.cfg.ClusterName, string(t.cfg.NodeID))); err != nil {
		return &HandshakeError{Addr: l.addr, Peer: id, Err: fmt.Errorf("write hello: %w", err)}
	}
	l.br = bufio.NewReaderSize(l.conn, 512)
	h, err := readHandshake(l.br)
	if err != nil {
		return &HandshakeError{Addr: l.addr, Peer: id, Err: err}
	}
	switch {
	case h.kind == kindRefuse:
		return &HandshakeError{Addr: l.addr, Peer: id, Refused: true, Reason: h.reason, Err: refusalKind(h.code)}
	case h.kind != kindHello:
		return fail(ErrMalformed, "expected a hello, got message kind %d", h.kind)
	case h.version != t.version:
		return fail(ErrProtocolVersion, "remote speaks protocol version %d, want %d", h.version, t.version)
	case h.clusterLen > MaxIDLen:
		return fail(ErrClusterMismatch, "cluster name of %d bytes is longer than %d", h.clusterLen, MaxIDLen)
	case h.cluster != t.cfg.ClusterName:
		return fail(ErrClusterMismatch, "cluster name %q does not match %q", h.cluster, t.cfg.ClusterName)
	case h.nodeIDLen == 0 || h.nodeIDLen > MaxIDLen:
		return fail(ErrBadNodeID, "remote node ID of %d bytes is empty or longer than %d", h.nodeIDLen, MaxIDLen)
	case dstate.NodeID(h.nodeID) != id:
		return fail(ErrUnexpectedPeer, "reached node %q, want %q", h.nodeID, id)
	}
	if tc, ok := l.conn.(*tls.Conn); ok && !t.cfg.TLS.InsecureSkipVerify {
		if reason := certid.Mismatch(tc.ConnectionState(), string(id)); reason != "" {
			return fail(ErrIdentityMismatch, "%s", reason)
		}
	}
	_ = l.raw.SetDeadline(time.Time{})
	if l.conn == l.raw {
		l.now = newNowWriter(l.raw)
	}
	return nil
}

// clientTLS returns the TLS config for dialing addr: ServerName defaults to
// the host of addr.
func (t *Transport) clientTLS(addr string) *tls.Config {
	cfg := t.cfg.TLS
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	return cfg
}

// serveInbound runs the accept-side handshake on c, then delivers its
// frames until it fails, stays idle too long or the transport shuts down.
func (t *Transport) serveInbound(c, raw net.Conn, host string) {
	defer t.leave(raw, host)
	defer func() { _ = c.Close() }()
	remote := raw.RemoteAddr().String()
	from, br, err := t.acceptHandshake(c, remote)
	if err != nil {
		t.stats.handshakeFailures.Add(1)
		t.warn(host, "handshake", "transport: inbound handshake failed", "addr", remote, "err", err)
		return
	}
	t.log.Debug("transport: accepted", "peer", string(from), "addr", remote)
	m := msgReader{
		r: br, br: br, maxFrame: t.cfg.MaxFrameSize, maxMessage: t.cfg.MaxMessageSize,
		conn: c, idle: t.cfg.IdleTimeout, read: t.cfg.ReadTimeout,
		budget: &t.budget, keepalives: &t.stats.keepalivesIn,
	}
	if t.lent != nil || t.batch != nil {
		m.free = t.free
	}
	defer m.release()
	var frames [][]byte
	var kept []bool
	for {
		frame, err := m.next()
		if err != nil {
			t.inboundFailed(from, remote, err)
			return
		}
		if t.batch != nil {
			frames = m.batch(frames, frame)
			kept = slices.Grow(kept[:0], len(frames))[:len(frames)]
			clear(kept)
			bytes := 0
			for _, f := range frames {
				bytes += len(f)
			}
			t.stats.framesIn.Add(uint64(len(frames)))
			t.stats.bytesIn.Add(uint64(bytes))
			t.batch(from, frames, kept)
			m.release()
			for i, f := range frames {
				if !kept[i] {
					m.giveBack(f)
				}
			}
			clear(frames) // do not pin frames given away
			continue
		}
		t.stats.framesIn.Add(1)
		t.stats.bytesIn.Add(uint64(len(frame)))
		kept := true
		if t.lent != nil {
			kept = t.lent(from, frame)
		} else {
			t.deliver(from, frame)
		}
		m.release()
		if !kept {
			m.giveBack(frame)
		}
	}
}

// inboundFailed counts and logs why an inbound connection ended.
func (t *Transport) inboundFailed(from dstate.NodeID, remote string, err error) {
	var fse *FrameSizeError
	switch {
	case t.life.Err() != nil || errors.Is(err, io.EOF):
		t.log.Debug("transport: inbound connection closed", "peer", string(from), "addr", remote)
	case errors.As(err, &fse):
		t.stats.oversizedFrames.Add(1)
		t.warn(string(from), "frame_size", "transport: inbound frame too large, closing connection",
			"peer", string(from), "addr", remote, "size", fse.Size, "limit", fse.Limit, "err", err)
	case errors.Is(err, ErrReassemblyBudget):
		t.stats.budgetRefusals.Add(1)
		t.warn(string(from), "reassembly", "transport: partial messages hold the whole reassembly budget, closing connection",
			"peer", string(from), "addr", remote, "limit", t.cfg.MaxReassemblySize, "err", err)
	case errors.Is(err, ErrIdleTimeout):
		t.stats.idleTimeouts.Add(1)
		t.warn(string(from), "idle", "transport: inbound connection idle, closing it",
			"peer", string(from), "addr", remote, "idle_timeout", t.cfg.IdleTimeout)
	case errors.Is(err, ErrReadTimeout):
		t.stats.readTimeouts.Add(1)
		t.warn(string(from), "read_timeout", "transport: inbound frame too slow, closing connection",
			"peer", string(from), "addr", remote, "read_timeout", t.cfg.ReadTimeout, "err", err)
	default:
		t.log.Info("transport: inbound connection failed", "peer", string(from), "addr", remote, "err", err)
	}
}

// acceptHandshake runs the optional TLS handshake, reads the dialer's
// hello and answers with ours or with a refusal.
func (t *Transport) acceptHandshake(c net.Conn, remote string) (dstate.NodeID, *bufio.Reader, error) {
	_ = c.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			return "", nil, &HandshakeError{Addr: remote, Err: fmt.Errorf("tls: %w", err)}
		}
	}
	br := bufio.NewReaderSize(c, readBufSize)
	h, err := readHandshake(br)
	if err != nil {
		return "", nil, &HandshakeError{Addr: remote, Err: err}
	}
	if h.kind != kindHello {
		return "", nil, &HandshakeError{Addr: remote, Err: fmt.Errorf("%w: expected a hello, got message kind %d", ErrMalformed, h.kind)}
	}
	from := dstate.NodeID(h.nodeID)
	code, reason := t.checkHello(h)
	if tc, ok := c.(*tls.Conn); ok && reason == "" {
		if r := certid.Mismatch(tc.ConnectionState(), string(from)); r != "" {
			code, reason = refuseIdentity, r
		}
	}
	if reason != "" {
		// Every byte of the hello has been read, so closing after the
		// refusal sends FIN, not RST, and the dialer reads the reason.
		_, _ = c.Write(appendRefusal(nil, t.version, code, reason))
		return "", nil, &HandshakeError{Addr: remote, Peer: from, Reason: reason, Err: refusalKind(code)}
	}
	if _, err := c.Write(appendHello(nil, t.version, t.cfg.ClusterName, string(t.cfg.NodeID))); err != nil {
		return "", nil, &HandshakeError{Addr: remote, Peer: from, Err: fmt.Errorf("write hello: %w", err)}
	}
	_ = c.SetDeadline(time.Time{})
	return from, br, nil
}

// checkHello returns a refusal code and reason for an unacceptable hello,
// or an empty reason.
func (t *Transport) checkHello(h handshake) (byte, string) {
	switch {
	case h.version != t.version:
		return refuseVersion, fmt.Sprintf("protocol version %d is not supported (want %d)", h.version, t.version)
	case h.clusterLen > MaxIDLen:
		return refuseCluster, fmt.Sprintf("cluster name of %d bytes is longer than %d", h.clusterLen, MaxIDLen)
	case h.cluster != t.cfg.ClusterName:
		return refuseCluster, fmt.Sprintf("cluster name %q does not match %q", h.cluster, t.cfg.ClusterName)
	case h.nodeIDLen == 0:
		return refuseNodeID, "node ID is empty"
	case h.nodeIDLen > MaxIDLen:
		return refuseNodeID, fmt.Sprintf("node ID of %d bytes is longer than %d", h.nodeIDLen, MaxIDLen)
	case dstate.NodeID(h.nodeID) == t.cfg.NodeID:
		return refuseNodeID, fmt.Sprintf("node ID %q is this node's own ID", h.nodeID)
	}
	return 0, ""
}
