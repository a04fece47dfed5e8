package raftpersist

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// The forwarding protocol: on a connection that began with protoForward,
// the client sends request frames and the server answers each with one
// response frame, in order. A frame is a 4-byte big-endian body length and
// the body; a request body starts with its type, a response body with its
// status.
const (
	reqApply      byte = 1 // uvarint timeout ms, save command
	reqReadIndex  byte = 2 // uvarint timeout ms
	reqStats      byte = 3 // -
	reqMembership byte = 4 // byte kind, string id, string address, uvarint timeout ms

	statusOK          byte = 0 // payload per request type
	statusNotLeader   byte = 1 // string leader address ("" when unknown)
	statusUnavailable byte = 2 // string message; retry (an apply's outcome is unknown)
	statusError       byte = 3 // string message; do not retry
	statusForbidden   byte = 4 // string message; do not retry (the sender may not make this request)
)

// Membership change kinds of reqMembership.
const (
	memberAddVoter    byte = 1
	memberAddNonvoter byte = 2
	memberRemove      byte = 3
)

func writeFrame(w io.Writer, body []byte) error {
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	buf = append(buf, body...)
	_, err := w.Write(buf)
	return err
}

func readFrame(r io.Reader, max int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrBadCommand)
	}
	// The body grows as it arrives, so four bytes announcing a large frame
	// cost no more than the bytes that follow them.
	body, err := readRecord(r, nil, uint64(n))
	if err != nil {
		return nil, err
	}
	return body, nil
}

// remoteError is a non-OK response.
type remoteError struct {
	addr   string
	status byte
	msg    string // message, or the leader address for statusNotLeader
}

func (e *remoteError) Error() string {
	switch e.status {
	case statusNotLeader:
		return fmt.Sprintf("raftpersist: %s is not the leader (leader %q)", e.addr, e.msg)
	case statusUnavailable:
		return fmt.Sprintf("raftpersist: %s unavailable: %s", e.addr, e.msg)
	case statusForbidden:
		return fmt.Sprintf("%v: %v: %s: %s", ErrRemote, ErrForbidden, e.addr, e.msg)
	default:
		return fmt.Sprintf("%v: %s: %s", ErrRemote, e.addr, e.msg)
	}
}

// Unwrap makes a statusError response match ErrRemote, and a
// statusForbidden one ErrRemote and ErrForbidden.
func (e *remoteError) Unwrap() []error {
	switch e.status {
	case statusError:
		return []error{ErrRemote}
	case statusForbidden:
		return []error{ErrRemote, ErrForbidden}
	}
	return nil
}

// final reports whether a response must not be retried.
func (e *remoteError) final() bool { return e.status == statusError || e.status == statusForbidden }

// rpcClient sends forwarding requests over pooled connections. A pooled
// connection idle for maxAge is closed instead of reused: the server closes
// connections idle for its Config.IdleTimeout, twice maxAge.
type rpcClient struct {
	m        *mux
	maxFrame int
	maxIdle  int
	fallback time.Duration // deadline when ctx has none
	maxAge   time.Duration

	mu   sync.Mutex
	idle map[string][]pooledConn
}

// pooledConn is an idle forwarding connection and when it became idle.
type pooledConn struct {
	net.Conn
	since time.Time
}

func newRPCClient(m *mux, maxFrame, maxIdle int, fallback, maxAge time.Duration) *rpcClient {
	return &rpcClient{m: m, maxFrame: maxFrame, maxIdle: maxIdle, fallback: fallback, maxAge: maxAge, idle: map[string][]pooledConn{}}
}

func (c *rpcClient) get(ctx context.Context, addr string) (net.Conn, error) {
	c.mu.Lock()
	for l := c.idle[addr]; len(l) > 0; l = c.idle[addr] {
		pc := l[len(l)-1]
		c.idle[addr] = l[:len(l)-1]
		if c.maxAge > 0 && time.Since(pc.since) >= c.maxAge {
			_ = pc.Close()
			continue
		}
		c.mu.Unlock()
		return pc.Conn, nil
	}
	c.mu.Unlock()
	timeout := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	return c.m.dial(addr, protoForward, timeout)
}

func (c *rpcClient) put(addr string, conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle[addr]) >= c.maxIdle {
		_ = conn.Close()
		return
	}
	c.idle[addr] = append(c.idle[addr], pooledConn{Conn: conn, since: time.Now()})
}

// call sends one request and returns the OK payload, a *remoteError, or a
// transport error. The call ends at ctx's deadline or cancellation.
func (c *rpcClient) call(ctx context.Context, addr string, body []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := c.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.fallback)
	}
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	resp, err := func() ([]byte, error) {
		if err := writeFrame(conn, body); err != nil {
			return nil, err
		}
		return readFrame(conn, c.maxFrame)
	}()
	if !stop() || err != nil {
		_ = conn.Close()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if err == nil {
			err = errors.New("raftpersist: call interrupted")
		}
		return nil, fmt.Errorf("raftpersist: forward to %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	c.put(addr, conn)
	return parseResponse(addr, resp)
}

// close closes the idle connections.
func (c *rpcClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.idle {
		for _, conn := range l {
			_ = conn.Close()
		}
	}
	c.idle = map[string][]pooledConn{}
}

// ms encodes a remaining duration for a request (at least 1 ms).
func ms(d time.Duration) uint64 {
	if d < time.Millisecond {
		return 1
	}
	return uint64(d / time.Millisecond)
}
