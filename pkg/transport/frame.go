package transport

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
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
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(n)|more)
		if _, err := w.Write(l[:]); err != nil {
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

// readFrame reads one message of at most limit bytes (see readMessage).
func readFrame(r io.Reader, limit int) ([]byte, error) { return readMessage(r, limit, limit) }

// readMessage reads one message into a new slice: a single frame, or the
// fragments of a longer one joined. A frame longer than maxFrame, or a
// message growing past maxMessage, returns a *FrameSizeError before the
// excess is allocated. A clean end of stream between messages returns
// io.EOF.
func readMessage(r io.Reader, maxFrame, maxMessage int) ([]byte, error) {
	var msg []byte
	for first := true; ; first = false {
		var l [4]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			if !first {
				err = noEOF(err)
			}
			return nil, err
		}
		raw := binary.BigEndian.Uint32(l[:])
		n, more := raw&^moreFragments, raw&moreFragments != 0
		if uint64(n) > uint64(maxFrame) {
			return nil, &FrameSizeError{Size: uint64(n), Limit: maxFrame}
		}
		if total := uint64(len(msg)) + uint64(n); total > uint64(maxMessage) {
			return nil, &FrameSizeError{Size: total, Limit: maxMessage, Message: true}
		}
		if first && !more && n <= growStep {
			frame := make([]byte, n)
			if _, err := io.ReadFull(r, frame); err != nil {
				return nil, noEOF(err)
			}
			return frame, nil
		}
		// A large frame grows as its bytes arrive, growStep at a time, so
		// a header announcing more than follows costs no more than what
		// does follow.
		for left := int(n); left > 0; {
			step, off := min(left, growStep), len(msg)
			msg = slices.Grow(msg, step)[:off+step]
			if _, err := io.ReadFull(r, msg[off:]); err != nil {
				return nil, noEOF(err)
			}
			left -= step
		}
		if !more {
			return msg, nil
		}
	}
}
