package transport

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/internal/backoff"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Buffer sizes of a connection.
const (
	writeBufSize = 64 << 10
	readBufSize  = 64 << 10
	// deadlineEvery is how many bytes a burst writes before it pushes the
	// write deadline forward again.
	deadlineEvery = 1 << 20
)

// errHungUp is the LastError of a peer whose connection the remote closed.
var errHungUp = errors.New("transport: connection closed by peer")

// peer is the outbound side of one remote node: a bounded queue drained by
// one writer goroutine (runPeer) over the one connection this node dialed.
type peer struct {
	id    dstate.NodeID
	queue *frameQueue

	// life is cancelled by RemovePeer or when the transport shuts down; it
	// aborts dials. It is never a caller's context.
	life   context.Context
	cancel context.CancelFunc
	redial chan struct{} // capacity 1: the address changed

	// carry holds frames whose write failed on the last connection; the
	// writer sends them first on the next one. Only the writer touches it.
	carry [][]byte
	burst [][]byte // reused by writeQueued

	// Direct writes (see Transport.sendDirect): a Send that finds nothing
	// queued and the writer idle writes its frame on the connection itself,
	// saving the writer's wake-up. wmu is held by whoever writes to the
	// connection: the writer for each burst, a direct Send for its frame.
	wmu  sync.Mutex
	live *link // the writer's current connection (wmu; nil between connections)
	// pending counts the frames Send accepted that are not yet written or
	// lost (queued, in the writer's hands, carried, or a direct write's
	// tail). A direct write needs it to be 1 (its own frame), which keeps
	// the frames of one sender in order.
	pending atomic.Int64
	// tail is what a direct write left unwritten when the socket was full
	// (wmu): the writer writes it before anything else; tailFrame is its
	// whole frame, carried to the next connection if this one fails first.
	tail, tailFrame []byte
	scratch         []byte        // a direct write's header and frame (wmu)
	congested       atomic.Bool   // a direct write found the socket full; off until the writer drains the queue
	wroteDirect     atomic.Bool   // a direct write since the writer's last keepalive tick
	lastDirect      atomic.Int64  // monotonic ns of the last direct write (see directGap)
	nudge           chan struct{} // capacity 1: a direct write left a tail

	mu        sync.Mutex
	addr      string
	connected bool
	raw       net.Conn // current outbound TCP connection, if any
	lastErr   error
}

func newPeer(parent context.Context, id dstate.NodeID, addr string, queueSize int) *peer {
	life, cancel := context.WithCancel(parent)
	return &peer{
		id:     id,
		queue:  newFrameQueue(queueSize),
		life:   life,
		cancel: cancel,
		redial: make(chan struct{}, 1),
		nudge:  make(chan struct{}, 1),
		addr:   addr,
	}
}

func (p *peer) address() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// setAddr records a new address and wakes the writer to move there.
func (p *peer) setAddr(addr string) {
	p.mu.Lock()
	changed := p.addr != addr
	p.addr = addr
	p.mu.Unlock()
	if changed {
		select {
		case p.redial <- struct{}{}:
		default:
		}
	}
}

// stop ends the writer: it cancels dials and closes the connection so a
// blocked write returns.
func (p *peer) stop() {
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.raw != nil {
		_ = p.raw.Close()
	}
}

func (p *peer) setConnected(raw net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.connected, p.raw, p.lastErr = true, raw, nil
	if p.life.Err() != nil {
		_ = raw.Close() // stop ran before the connection was recorded
	}
}

func (p *peer) setDisconnected(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.connected, p.raw = false, nil
	if err != nil {
		p.lastErr = err
	}
}

func (p *peer) stat() PeerStat {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PeerStat{Addr: p.addr, Connected: p.connected, QueueLen: p.queue.len(), LastError: p.lastErr}
}

// runPeer is the peer's writer goroutine: connect, write until the
// connection fails, back off, repeat; until the peer is removed or the
// transport closes.
func (t *Transport) runPeer(p *peer) {
	defer func() {
		// Whatever is still queued will never be written.
		t.stats.framesLost.Add(uint64(len(p.carry)))
		p.carry = nil
		t.stats.framesLost.Add(uint64(p.queue.drain()))
	}()
	failures := 0
	everConnected := false
	for {
		if p.life.Err() != nil || (t.isClosing() && p.queue.len() == 0) {
			return
		}
		addr := p.address()
		l, err := t.dial(p.life, p.id, addr)
		if err != nil {
			if p.life.Err() != nil {
				return
			}
			p.setDisconnected(err)
			t.logDialError(p.id, addr, err, failures)
			if t.isClosing() {
				return
			}
			timer := time.NewTimer(backoff.Policy{Min: t.cfg.ReconnectBackoffMin, Max: t.cfg.ReconnectBackoffMax, Jitter: true}.Delay(failures))
			failures++
			select {
			case <-timer.C:
			case <-p.redial:
				timer.Stop()
				failures = 0
			case <-t.closing:
				timer.Stop()
				return
			case <-p.life.Done():
				timer.Stop()
				return
			}
			continue
		}
		if everConnected {
			t.stats.reconnects.Add(1)
		}
		everConnected, failures = true, 0
		p.setConnected(l.raw)
		t.log.Debug("transport: connected", "peer", string(p.id), "addr", addr)
		if fn := t.linkUpFunc(); fn != nil {
			fn(p.id)
		}
		go l.watch()
		exit, err := t.writeLoop(p, l)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.stats.writeTimeouts.Add(1)
			t.warn(string(p.id), "write_timeout", "transport: peer stopped reading, closing connection",
				"peer", string(p.id), "addr", addr, "write_timeout", t.cfg.WriteTimeout, "err", err)
		}
		p.setDisconnected(err)
		_ = l.conn.Close()
		t.untrack(l.raw)
		<-l.dead
		if exit {
			return
		}
		t.log.Info("transport: connection lost", "peer", string(p.id), "addr", addr, "err", err)
	}
}

// logDialError logs a failed connect: handshake failures once per peer per
// log interval (they are configuration problems), plain dial failures once per outage.
func (t *Transport) logDialError(id dstate.NodeID, addr string, err error, failures int) {
	var herr *HandshakeError
	switch {
	case errors.As(err, &herr):
		t.warn(string(id), "handshake", "transport: outbound handshake failed", "peer", string(id), "addr", addr, "err", err)
	case failures == 0:
		t.log.Info("transport: dial failed", "peer", string(id), "addr", addr, "err", err)
	default:
		t.log.Debug("transport: dial failed", "peer", string(id), "addr", addr, "err", err, "failures", failures+1)
	}
}

// writeLoop writes queued frames to l until the connection fails (exit
// false: reconnect), the address changes (exit false), or the peer is
// removed or the transport closes (exit true, after flushing the queue on
// close).
//
// A connection with nothing to write for KeepaliveInterval gets a
// keepalive frame, so that the acceptor's IdleTimeout does not cut it.
func (t *Transport) writeLoop(p *peer, l *link) (exit bool, err error) {
	bw := bufio.NewWriterSize(l.conn, writeBufSize)
	p.wmu.Lock()
	if len(p.carry) > 0 {
		carried := p.carry
		p.carry = nil
		if err := t.writeFrames(p, l, bw, carried); err != nil {
			p.wmu.Unlock()
			return false, err
		}
	}
	p.live = l
	p.wmu.Unlock()
	p.queue.signal() // frames a lost connection left queued go first
	defer func() {
		p.wmu.Lock()
		p.live = nil
		if p.tail != nil {
			// Part of the frame went out on this connection: all of it
			// goes first on the next one.
			p.carry = append([][]byte{p.tailFrame}, p.carry...)
			p.tail, p.tailFrame = nil, nil
		}
		p.wmu.Unlock()
	}()
	// wrote records a write since the last tick; a tick without one sends
	// a keepalive, so a connection is never quiet for two intervals.
	ticker := time.NewTicker(t.cfg.KeepaliveInterval)
	defer ticker.Stop()
	wrote := true
	for {
		select {
		case <-ticker.C:
			direct := p.wroteDirect.Swap(false) // a direct write in this interval
			if !wrote && !direct {
				p.wmu.Lock()
				err := t.writeKeepalive(l, bw)
				p.wmu.Unlock()
				if err != nil {
					return false, err
				}
			}
			wrote = false
		case <-p.nudge:
			p.wmu.Lock()
			err := t.writeTail(p, l, bw)
			p.wmu.Unlock()
			if err != nil {
				return false, err
			}
			wrote = true
		case <-p.queue.ready:
			// A hang-up noticed by the watcher wins over ready frames, so
			// they stay queued for the next connection instead of a dead one.
			select {
			case <-l.dead:
				return false, errHungUp
			default:
			}
			p.wmu.Lock()
			err := t.writeTail(p, l, bw)
			if err == nil {
				err = t.writeQueued(p, l, bw)
			}
			if err == nil && p.queue.len() == 0 {
				p.congested.Store(false)
			}
			p.wmu.Unlock()
			if err != nil {
				return false, err
			}
			wrote = true
		case <-l.dead:
			return false, errHungUp
		case <-p.redial:
			if p.address() != l.addr {
				return false, nil
			}
		case <-p.life.Done():
			return true, nil
		case <-t.closing:
			for {
				p.wmu.Lock()
				err := t.writeTail(p, l, bw)
				more := p.queue.len() > 0
				if err == nil && more {
					err = t.writeQueued(p, l, bw)
				}
				p.wmu.Unlock()
				if err != nil || !more {
					return true, err
				}
			}
		}
	}
}

// writeTail writes what a direct write left of its frame; wmu is held.
func (t *Transport) writeTail(p *peer, l *link, bw *bufio.Writer) error {
	if p.tail == nil {
		return nil
	}
	_ = l.conn.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	if _, err := bw.Write(p.tail); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	t.stats.framesOut.Add(1)
	t.stats.bytesOut.Add(uint64(len(p.tailFrame)))
	p.tail, p.tailFrame = nil, nil
	p.pending.Add(-1)
	return nil
}

// Bounds of a direct write (see sendDirect).
const (
	// directMax is the largest frame a Send writes itself; larger ones go
	// through the writer's buffer.
	directMax = 16 << 10
	// directGap: a Send within this long of the last direct write goes to
	// the writer, which writes a burst of frames with one system call; the
	// wake-up a direct write saves only pays for a frame that comes alone.
	directGap = 50 * time.Microsecond
)

// errNoDirect: the connection does not take direct writes.
var errNoDirect = errors.New("transport: no direct writes on this connection")

// epoch is the origin of the transport's monotonic readings.
var epoch = time.Now()

// sendDirect writes frame on p's connection from the calling goroutine
// when nothing else is pending for p and nobody is writing to it, and
// reports whether it did (else the caller queues the frame for the
// writer; p.pending already counts it). The connection must be plain TCP
// (a TLS record cannot be cut where the socket's room ends), written with
// one non-blocking system call (link.writeNow): a write the full socket cut
// short leaves its tail to the writer, which sends it before anything
// else, and a Send never waits for the socket.
func (t *Transport) sendDirect(p *peer, frame []byte) bool {
	if len(frame) > directMax || len(frame) > t.cfg.MaxFrameSize || p.pending.Load() != 1 || p.congested.Load() || !p.wmu.TryLock() {
		return false
	}
	defer p.wmu.Unlock()
	l := p.live
	if l == nil || l.now == nil || p.tail != nil || p.pending.Load() != 1 {
		return false
	}
	select {
	case <-l.dead:
		return false
	default:
	}
	if mono := int64(time.Since(epoch)); mono-p.lastDirect.Swap(mono) < int64(t.directGap) {
		return false // a burst: the writer batches it
	}
	b := binary.BigEndian.AppendUint32(p.scratch[:0], uint32(len(frame)))
	b = append(b, frame...)
	p.scratch = b
	n, err := l.writeNow(b)
	switch {
	case err == nil && n == len(b):
		p.pending.Add(-1)
		p.wroteDirect.Store(true)
		t.stats.framesOut.Add(1)
		t.stats.bytesOut.Add(uint64(len(frame)))
		return true
	case n <= 0:
		// Nothing went out (a full socket, or the connection failed: the
		// writer finds out and carries the frame): the writer takes it
		// from the queue.
		p.congested.Store(true)
		return false
	default:
		p.tail, p.tailFrame = append([]byte(nil), b[n:]...), frame
		p.congested.Store(true)
		p.wroteDirect.Store(true)
		select {
		case p.nudge <- struct{}{}:
		default:
		}
		return true
	}
}

// writeKeepalive writes and flushes one keepalive frame.
func (t *Transport) writeKeepalive(l *link, bw *bufio.Writer) error {
	_ = l.conn.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], keepalive)
	if _, err := bw.Write(b[:]); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	t.stats.keepalivesOut.Add(1)
	return nil
}

// writeQueued takes every queued frame and writes them through bw, then
// flushes once. When the write fails they are kept in p.carry for the next
// connection.
func (t *Transport) writeQueued(p *peer, l *link, bw *bufio.Writer) error {
	burst := p.queue.take(p.burst)
	if len(burst) == 0 {
		p.burst = burst
		return nil
	}
	err := t.writeFrames(p, l, bw, burst)
	if err == nil {
		clear(burst) // do not pin written frames
		p.burst = burst[:0]
	} else {
		p.burst = nil // burst is now p.carry
	}
	return err
}

// writeFrames writes frames and flushes once. On failure the frames become
// p.carry: a write error means the bytes may not have left, and the frames
// are worth more on the next connection than lost.
func (t *Transport) writeFrames(p *peer, l *link, bw *bufio.Writer, frames [][]byte) error {
	_ = l.conn.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	bytes, sinceDeadline := 0, 0
	for _, f := range frames {
		if err := writeMessage(bw, f, t.cfg.MaxFrameSize); err != nil {
			p.carry = frames
			return err
		}
		bytes += len(f)
		if sinceDeadline += 4 + len(f); sinceDeadline >= deadlineEvery {
			_ = l.conn.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
			sinceDeadline = 0
		}
	}
	if err := bw.Flush(); err != nil {
		p.carry = frames
		return err
	}
	t.stats.framesOut.Add(uint64(len(frames)))
	t.stats.bytesOut.Add(uint64(bytes))
	p.pending.Add(-int64(len(frames)))
	return nil
}
