package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// ProtocolVersion is the version this package speaks in the handshake.
const ProtocolVersion uint16 = 1

// magic opens every handshake message.
const magic = "DSTT"

// maxReasonLen bounds the reason of a refusal; longer ones are truncated
// when sent and discarded beyond the bound when read.
const maxReasonLen = 1024

// Handshake message kinds.
const (
	kindHello  byte = 1
	kindRefuse byte = 2
)

// Refusal codes: they let the dialer map a refusal to a sentinel error.
const (
	refuseOther    byte = 0
	refuseVersion  byte = 1
	refuseCluster  byte = 2
	refuseNodeID   byte = 3
	refuseIdentity byte = 4
)

// refusalKind maps a refusal code to the sentinel the dialer reports.
func refusalKind(code byte) error {
	switch code {
	case refuseVersion:
		return ErrProtocolVersion
	case refuseCluster:
		return ErrClusterMismatch
	case refuseNodeID:
		return ErrBadNodeID
	case refuseIdentity:
		return ErrIdentityMismatch
	default:
		return ErrRefused
	}
}

// handshake is one decoded handshake message. The layout is the same for
// every protocol version, so a node can always read (and refuse) a hello of
// another version:
//
//	"DSTT" | version uint16 | kind uint8 | body
//	hello body:   uint16 len | cluster name | uint16 len | node ID
//	refusal body: code uint8 | uint16 len | reason
//
// All integers are big-endian.
type handshake struct {
	version uint16
	kind    byte

	// Hello fields. A field longer than MaxIDLen is skipped on the wire:
	// the string is then empty and the length tells the declared size.
	cluster    string
	clusterLen int
	nodeID     string
	nodeIDLen  int

	// Refusal fields.
	code   byte
	reason string
}

// appendHello appends a hello message to b.
func appendHello(b []byte, version uint16, cluster, nodeID string) []byte {
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, version)
	b = append(b, kindHello)
	b = appendField(b, cluster)
	return appendField(b, nodeID)
}

// appendRefusal appends a refusal message to b, truncating the reason.
func appendRefusal(b []byte, version uint16, code byte, reason string) []byte {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	b = append(b, magic...)
	b = binary.BigEndian.AppendUint16(b, version)
	b = append(b, kindRefuse, code)
	return appendField(b, reason)
}

// appendField appends a uint16 length and s (the callers keep s far below
// 64 KiB).
func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// readHandshake reads one handshake message. It allocates at most MaxIDLen
// bytes per hello field and maxReasonLen bytes for a reason, whatever the
// input declares.
func readHandshake(r *bufio.Reader) (handshake, error) {
	var h handshake
	var head [len(magic) + 3]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return h, fmt.Errorf("read hello: %w", err)
	}
	if string(head[:len(magic)]) != magic {
		return h, fmt.Errorf("%w: got %q", ErrBadMagic, head[:len(magic)])
	}
	h.version = binary.BigEndian.Uint16(head[len(magic):])
	h.kind = head[len(magic)+2]
	var err error
	switch h.kind {
	case kindHello:
		if h.cluster, h.clusterLen, err = readField(r, MaxIDLen); err != nil {
			return h, fmt.Errorf("read cluster name: %w", err)
		}
		if h.nodeID, h.nodeIDLen, err = readField(r, MaxIDLen); err != nil {
			return h, fmt.Errorf("read node id: %w", err)
		}
	case kindRefuse:
		if h.code, err = r.ReadByte(); err != nil {
			return h, fmt.Errorf("read refusal: %w", io.ErrUnexpectedEOF)
		}
		if h.reason, _, err = readField(r, maxReasonLen); err != nil {
			return h, fmt.Errorf("read refusal reason: %w", err)
		}
	default:
		return h, fmt.Errorf("%w: unknown message kind %d", ErrMalformed, h.kind)
	}
	return h, nil
}

// readField reads a uint16 length and that many bytes. When the length
// exceeds limit it discards the bytes and returns "" with the length.
func readField(r *bufio.Reader, limit int) (string, int, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return "", 0, noEOF(err)
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n > limit {
		if _, err := r.Discard(n); err != nil {
			return "", n, noEOF(err)
		}
		return "", n, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", n, noEOF(err)
	}
	return string(b), n, nil
}

// noEOF turns io.EOF inside a message into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// moreFragments is set in a frame's length prefix when the frame is a
// fragment of a message that continues in the next frame. Frames are at
// most maxFrameSizeLimit (< 1<<31) long, so the bit is free.
const moreFragments = 1 << 31

// writeFrame writes a message that fits in one frame (without flushing).
func writeFrame(w *bufio.Writer, frame []byte) error {
	return writeMessage(w, frame, maxFrameSizeLimit)
}

// writeMessage writes msg as one frame, or as consecutive fragments of at
// most maxFrame bytes when it is longer (without flushing):
//
//	uint32 length | payload     (the length's top bit: more fragments follow)
func writeMessage(w *bufio.Writer, msg []byte, maxFrame int) error {
	for {
		n, more := len(msg), uint32(0)
		if n > maxFrame {
			n, more = maxFrame, moreFragments
		}
		// The header goes into w's own buffer (a local array would escape
		// through w's io.Writer and cost an allocation per frame).
		if _, err := w.Write(binary.BigEndian.AppendUint32(w.AvailableBuffer(), uint32(n)|more)); err != nil {
			return err
		}
		if _, err := w.Write(msg[:n]); err != nil {
			return err
		}
		if more == 0 {
			return nil
		}
		msg = msg[n:]
	}
}

// growStep is the most a message being read grows ahead of the bytes that
// have arrived.
const growStep = 64 << 10

// keepalive is the frame header a dialer sends when it has had nothing to
// send for a while: an empty fragment with the "more" bit set. A reader
// skips it between messages; a reader that predates it joins the empty
// fragment to the next message, which leaves that message unchanged.
const keepalive = moreFragments

// readFrame reads one message of at most limit bytes (see readMessage).
func readFrame(r io.Reader, limit int) ([]byte, error) { return readMessage(r, limit, limit) }

// readMessage reads one message into a new slice, with no deadlines and no
// shared budget (see msgReader.next).
func readMessage(r io.Reader, maxFrame, maxMessage int) ([]byte, error) {
	m := msgReader{r: r, maxFrame: maxFrame, maxMessage: maxMessage}
	msg, err := m.next()
	m.release()
	return msg, err
}

// readDeadliner is the part of a connection msgReader needs to bound its
// waits.
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// msgReader reads the messages of one connection. Its optional parts are
// the deadlines (conn, idle, read) and the shared reassembly budget.
type msgReader struct {
	r io.Reader
	// br is r when r is buffered: a wait for bytes that have already
	// arrived needs no deadline.
	br                   *bufio.Reader
	maxFrame, maxMessage int

	// conn, when set, gets a read deadline before every read that may
	// wait: idle while waiting for the first header of a message, and
	// read for each started MiB of a frame (and for the header of a
	// message's next fragment) once the message has begun.
	conn       readDeadliner
	idle, read time.Duration
	armed      bool // a deadline is set on conn

	// budget, when set, is reserved from as a message grows; held is what
	// the message being read (or just returned) holds, given back by
	// release.
	budget *budget
	held   int

	// keepalives, when set, counts the keepalive frames skipped.
	keepalives *atomic.Uint64

	// spare is a lent frame the receiver gave back (see giveBack): the next
	// single-frame message that fits is read into it. When there is none,
	// one is taken from spares (the others given back, when frames are lent
	// in batches), else from free (frames the host returned), if set.
	spare  []byte
	spares [][]byte
	free   chan []byte
	hdr    [4]byte // the frame header being read
}

// release gives back the budget held by the last message, once the caller
// is done with it.
func (m *msgReader) release() {
	if m.budget != nil && m.held > 0 {
		m.budget.release(m.held)
	}
	m.held = 0
}

// reserve takes n more bytes from the budget for the message being read.
func (m *msgReader) reserve(n, size int) error {
	if m.budget == nil {
		return nil
	}
	if !m.budget.reserve(n) {
		return &BudgetError{Size: size, Held: m.budget.inUse(), Limit: m.budget.limit}
	}
	m.held += n
	return nil
}

// arm sets a read deadline d from now before reading n bytes, unless they
// have already arrived. The error names why the wait was bounded.
func (m *msgReader) arm(n int, d time.Duration, why error) error {
	switch {
	case m.conn == nil || (m.br != nil && m.br.Buffered() >= n):
		return nil
	case d <= 0:
		if m.armed {
			_ = m.conn.SetReadDeadline(time.Time{})
			m.armed = false
		}
		return nil
	}
	_ = m.conn.SetReadDeadline(time.Now().Add(d))
	m.armed = true
	return why
}

// readFull is io.ReadFull that names a missed deadline by the timeout that
// set it (why, from arm).
func readFull(r io.Reader, b []byte, why error) error {
	_, err := io.ReadFull(r, b)
	if err != nil && why != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w: %w", why, err)
	}
	return err
}

// small returns a buffer for a message of one frame of n ≤ growStep bytes.
// It is not charged to the budget: a connection holds at most one such
// frame, so MaxConns bounds them, and small messages from legitimate peers
// pass while large ones fill the budget.
func (m *msgReader) small(n int) []byte {
	if m.spare == nil && len(m.spares) > 0 {
		m.spare, m.spares = m.spares[len(m.spares)-1], m.spares[:len(m.spares)-1]
	}
	if m.spare == nil && m.free != nil {
		select {
		case m.spare = <-m.free:
		default:
		}
	}
	switch {
	case m.spare != nil && n <= cap(m.spare):
		frame := m.spare[:n]
		m.spare = nil
		return frame
	case m.free != nil:
		// Room to spare, so that a frame a few bytes longer than this one
		// can be read into it when it comes back.
		return make([]byte, n, max(minLent, n+n/4))
	}
	return make([]byte, n)
}

// buffered returns the next message when it is one small frame whose bytes
// have all arrived in the read buffer already, copied out without a read
// call or a deadline; else nil, and readOne reads it the long way (which
// also skips keepalives and reports oversized frames).
func (m *msgReader) buffered() []byte {
	br := m.br
	if br == nil || br.Buffered() < 4 {
		return nil
	}
	h, err := br.Peek(4)
	if err != nil {
		return nil
	}
	raw := binary.BigEndian.Uint32(h)
	n := int(raw)
	if raw == keepalive || raw&moreFragments != 0 || n > growStep || n > m.maxFrame || n > m.maxMessage || br.Buffered() < 4+n {
		return nil
	}
	b, err := br.Peek(4 + n)
	if err != nil {
		return nil
	}
	frame := m.small(n)
	copy(frame, b[4:])
	_, _ = br.Discard(4 + n)
	return frame
}

// minLent is the smallest capacity of a frame read for a lending receiver.
const minLent = 256

// giveBack returns a frame the receiver did not keep, to be read into
// again. Only frames of one fragment come back (they are never charged to
// the budget).
func (m *msgReader) giveBack(frame []byte) {
	switch {
	case cap(frame) > growStep:
	case m.spare == nil:
		m.spare = frame[:0]
	case len(m.spares) < maxBatch:
		m.spares = append(m.spares, frame[:0])
	}
}

// maxBatch is the most frames a connection lends in one batch (see
// Transport.StartLendingBatches), and the most it keeps to read into.
const maxBatch = 256

// batch returns first and the frames after it already in the read buffer
// (see buffered), at most maxBatch in all, reusing frames' storage.
func (m *msgReader) batch(frames [][]byte, first []byte) [][]byte {
	frames = append(frames[:0], first)
	for len(frames) < maxBatch {
		f := m.buffered()
		if f == nil {
			break
		}
		frames = append(frames, f)
	}
	return frames
}

// frameTimeout is the time a frame of n bytes gets once its header has
// arrived: d for each started MiB.
func frameTimeout(n int, d time.Duration) time.Duration {
	return d * time.Duration(1+n/deadlineEvery)
}

// next reads one message into a new slice: a single frame, or the
// fragments of a longer one joined. Keepalive frames between messages are
// skipped. A frame longer than maxFrame, or a message growing past
// maxMessage, returns a *FrameSizeError before the excess is allocated; a
// message larger than one frame of growStep bytes that would take the
// shared budget past its limit returns a *BudgetError before the excess is
// allocated. A clean end of stream
// between messages returns io.EOF. On error the budget the message held
// is given back; on success it is held until release.
func (m *msgReader) next() ([]byte, error) {
	m.release()
	msg, err := m.readOne()
	if err != nil {
		m.release()
		return nil, err
	}
	return msg, nil
}

func (m *msgReader) readOne() ([]byte, error) {
	if frame := m.buffered(); frame != nil {
		return frame, nil
	}
	var msg []byte
	for first := true; ; {
		l := m.hdr[:] // a local array would escape through m.r
		var why error
		if first {
			why = m.arm(len(l), m.idle, ErrIdleTimeout)
		} else {
			why = m.arm(len(l), m.read, ErrReadTimeout)
		}
		if err := readFull(m.r, l, why); err != nil {
			if !first {
				err = noEOF(err)
			}
			return nil, err
		}
		raw := binary.BigEndian.Uint32(l)
		if first && raw == keepalive {
			if m.keepalives != nil {
				m.keepalives.Add(1)
			}
			continue // not a message: the next header is still the first
		}
		n, more := raw&^moreFragments, raw&moreFragments != 0
		if uint64(n) > uint64(m.maxFrame) {
			return nil, &FrameSizeError{Size: uint64(n), Limit: m.maxFrame}
		}
		total := uint64(len(msg)) + uint64(n)
		if total > uint64(m.maxMessage) {
			return nil, &FrameSizeError{Size: total, Limit: m.maxMessage, Message: true}
		}
		why = m.arm(int(n), frameTimeout(int(n), m.read), ErrReadTimeout)
		if first && !more && n <= growStep {
			frame := m.small(int(n))
			if err := readFull(m.r, frame, why); err != nil {
				return nil, noEOF(err)
			}
			return frame, nil
		}
		// A large frame grows as its bytes arrive, growStep at a time, so
		// a header announcing more than follows costs no more than what
		// does follow.
		for left := int(n); left > 0; {
			step, off := min(left, growStep), len(msg)
			var err error
			if msg, err = m.grow(msg, step, left, more); err != nil {
				return nil, err
			}
			if err := readFull(m.r, msg[off:], why); err != nil {
				return nil, noEOF(err)
			}
			left -= step
		}
		if !more {
			return msg, nil
		}
		first = false
	}
}

// grow lengthens msg by step bytes. New capacity at least doubles (so a
// message costs amortised linear copying) but never passes what the frame
// still announces (left, when it is the last fragment) or maxMessage; it is
// reserved from the budget before it is allocated.
func (m *msgReader) grow(msg []byte, step, left int, more bool) ([]byte, error) {
	need := len(msg) + step
	if need <= cap(msg) {
		return msg[:need], nil
	}
	ceiling := m.maxMessage
	if !more {
		ceiling = len(msg) + left
	}
	newCap := max(need, min(2*cap(msg), ceiling))
	if err := m.reserve(newCap-cap(msg), need); err != nil {
		return nil, err
	}
	grown := make([]byte, need, newCap)
	copy(grown, msg)
	return grown, nil
}
