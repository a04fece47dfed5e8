package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Fuzz targets for everything the transport reads off a connection: the
// frames (and fragments) of the message stream, and the handshake as the
// accepting side reads and answers it (FuzzReadHandshake in frame_test.go
// covers readHandshake followed by frames). Each
// asserts that no input panics, that bad input fails with the package's
// errors, and that decoding one input allocates no more than the
// configured limit plus a multiple of the input.

// fuzzLimits are the (MaxFrameSize, MaxMessageSize) pairs FuzzReadMessage
// picks from; all small, so the allocation bound is meaningful.
var fuzzLimits = [][2]int{
	{64 << 10, 256 << 10},
	{64 << 10, 64 << 10},
	{1 << 10, 4 << 10},
	{16, 64},
}

// fragmented encodes msgs as writeMessage does with the given frame size.
func fragmented(t testing.TB, maxFrame int, msgs ...[]byte) []byte {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	for _, m := range msgs {
		if err := writeMessage(w, m, maxFrame); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func FuzzReadMessage(f *testing.F) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
	fuzzcheck.AddSeeds(f,
		[]any{byte(0), fragmented(f, 64<<10, []byte("one"), nil, []byte("three"))},
		[]any{byte(0), fragmented(f, 64<<10, big)},
		[]any{byte(0), fragmented(f, 1<<10, big, []byte("tail"))},
		[]any{byte(2), fragmented(f, 1<<10, big[:3000], big[:1024], big[:1025])},
		[]any{byte(3), fragmented(f, 16, []byte("a message of more than sixteen bytes"), []byte("x"))},
		[]any{byte(3), fragmented(f, 16, big[:65])}, // over the message limit
		// A huge declared length, with and without the fragment bit.
		[]any{byte(0), []byte{0x7f, 0xff, 0xff, 0xff, 'x'}},
		[]any{byte(0), []byte{0xff, 0xff, 0xff, 0xff, 'x'}},
		// Fragments each within the frame limit adding up past the message
		// limit.
		[]any{byte(2), fragmented(f, 1<<10, append(big, '!'))},
		// Truncated: header, body, a fragment with no continuation.
		[]any{byte(0), []byte{0, 0}},
		[]any{byte(0), []byte{0, 0, 0, 9, 'a', 'b'}},
		[]any{byte(0), []byte{0x80, 0, 0, 2, 'a', 'b'}},
		// Empty fragments only.
		[]any{byte(0), []byte{0x80, 0, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		// Keepalives between messages and at the end.
		[]any{byte(0), []byte{0x80, 0, 0, 0, 0, 0, 0, 1, 'a', 0x80, 0, 0, 0, 0x80, 0, 0, 0}},
	)
	f.Fuzz(func(t *testing.T, mode byte, in []byte) {
		lim := fuzzLimits[int(mode)%len(fuzzLimits)]
		maxFrame, maxMessage := lim[0], lim[1]
		// Reading the whole input may allocate one message's limit (the
		// last message, cut short) plus what the complete ones hold.
		r := bytes.NewReader(in)
		var msgs [][]byte
		fuzzcheck.Alloc(t, "readMessage", maxMessage, len(in), 4, func() {
			for {
				start := r.Len()
				msg, err := readMessage(r, maxFrame, maxMessage)
				if err != nil {
					checkReadError(t, err, in[len(in)-start:], maxFrame, maxMessage)
					return
				}
				if len(msg) > maxMessage {
					t.Fatalf("message of %d bytes passed the limit of %d", len(msg), maxMessage)
				}
				// Every message takes its own bytes plus a 4-byte header.
				if consumed := start - r.Len(); consumed < len(msg)+4 {
					t.Fatalf("a %d-byte message came from %d input bytes", len(msg), consumed)
				}
				msgs = append(msgs, msg)
			}
		})
		// Through a buffered reader, as connections read (whole frames
		// already in the buffer are copied out without a read call), the
		// same input reads as the same messages and ends where it ended.
		for _, size := range []int{16, 4096} {
			br := bufio.NewReaderSize(bytes.NewReader(in), size)
			m := msgReader{r: br, br: br, maxFrame: maxFrame, maxMessage: maxMessage}
			for i := 0; ; i++ {
				got, err := m.next()
				if err != nil {
					if i != len(msgs) {
						t.Fatalf("buffered (%d bytes): stopped after %d messages (%v), unbuffered after %d", size, i, err, len(msgs))
					}
					break
				}
				if i >= len(msgs) || !bytes.Equal(got, msgs[i]) {
					t.Fatalf("buffered (%d bytes): message %d is %q, unbuffered read %d messages", size, i, got, len(msgs))
				}
			}
			m.release()
		}
		// Read in batches, as connections lend them (next, then what is
		// whole in the buffer), with every frame given back after its
		// batch and read into again: the same messages, each with its own
		// bytes until its batch ends.
		for _, size := range []int{16, 4096} {
			br := bufio.NewReaderSize(bytes.NewReader(in), size)
			m := msgReader{r: br, br: br, maxFrame: maxFrame, maxMessage: maxMessage, free: make(chan []byte, 1)}
			var batch [][]byte
			i := 0
			for {
				first, err := m.next()
				if err != nil {
					if i != len(msgs) {
						t.Fatalf("batched (%d bytes): stopped after %d messages (%v), unbuffered after %d", size, i, err, len(msgs))
					}
					break
				}
				batch = m.batch(batch, first)
				for _, got := range batch {
					if i >= len(msgs) || !bytes.Equal(got, msgs[i]) {
						t.Fatalf("batched (%d bytes): message %d is %q, unbuffered read %d messages", size, i, got, len(msgs))
					}
					i++
				}
				m.release()
				for _, f := range batch {
					m.giveBack(f)
				}
			}
			m.release()
		}
		// What was read writes back as the same messages, fragmented at
		// any frame size the reader accepts.
		for _, frame := range []int{maxFrame, max(1, maxFrame/3)} {
			re := bytes.NewReader(fragmented(t, frame, msgs...))
			for i, want := range msgs {
				got, err := readMessage(re, maxFrame, maxMessage)
				if err != nil {
					t.Fatalf("re-reading message %d of %d (frames of %d): %v", i, len(msgs), frame, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("message %d: re-read %q, want %q", i, got, want)
				}
			}
			if _, err := readMessage(re, maxFrame, maxMessage); err != io.EOF {
				t.Fatalf("after the re-written messages: %v, want io.EOF", err)
			}
		}
	})
}

// onlyKeepalives reports whether b is nothing but whole keepalive frames.
func onlyKeepalives(b []byte) bool {
	for ; len(b) >= 4; b = b[4:] {
		if binary.BigEndian.Uint32(b) != keepalive {
			return false
		}
	}
	return len(b) == 0
}

// checkReadError asserts that err is one readMessage may return for a
// stream that had the bytes left when the message began.
func checkReadError(t *testing.T, err error, left []byte, maxFrame, maxMessage int) {
	t.Helper()
	if err.Error() == "" {
		t.Fatalf("%#v has an empty message", err)
	}
	var fse *FrameSizeError
	switch {
	case err == io.EOF:
		if !onlyKeepalives(left) {
			t.Fatalf("io.EOF with %d bytes left: a message was cut short", len(left))
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		if onlyKeepalives(left) {
			t.Fatalf("io.ErrUnexpectedEOF at a clean end of stream")
		}
	case errors.As(err, &fse):
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("%v does not match ErrFrameTooLarge", err)
		}
		limit := maxFrame
		if fse.Message {
			limit = maxMessage
		}
		if fse.Limit != limit || fse.Size <= uint64(limit) {
			t.Fatalf("%v: size %d, limit %d (message %v); want a size over %d", err, fse.Size, fse.Limit, fse.Message, limit)
		}
		if !strings.Contains(err.Error(), fmt.Sprint(fse.Size)) {
			t.Fatalf("%q does not name the size %d", err, fse.Size)
		}
	default:
		t.Fatalf("readMessage: unexpected error %v (%T)", err, err)
	}
}

// pipeConn is the accepting side of a connection whose dialer sent its
// bytes and closed its side.
type pipeConn struct {
	net.Conn // nil: only the methods below are used
	r        *bytes.Reader
	w        bytes.Buffer
}

func (c *pipeConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *pipeConn) SetDeadline(time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *pipeConn) Close() error                     { return nil }

// handshakeAllocLimit is what reading a handshake may allocate: the
// connection's read buffer, two hello fields and a reason.
const handshakeAllocLimit = readBufSize + 2*MaxIDLen + maxReasonLen

func FuzzAcceptHandshake(f *testing.F) {
	long := strings.Repeat("n", MaxIDLen+1)
	fuzzcheck.AddSeeds(f,
		[]any{appendHello(nil, ProtocolVersion, "c1", "n2")},
		[]any{appendHello(nil, ProtocolVersion, "c1", "n1")}, // our own ID
		[]any{appendHello(nil, ProtocolVersion, "other", "n2")},
		[]any{appendHello(nil, ProtocolVersion, "c1", "")},
		[]any{appendHello(nil, ProtocolVersion, "c1", long)},
		[]any{appendHello(nil, ProtocolVersion, long, "n2")},
		[]any{appendHello(nil, 7, "c1", "n2")}, // unknown version
		[]any{append(appendHello(nil, ProtocolVersion, "c1", "n2"), 0, 0, 0, 1, 'f')},
		[]any{appendRefusal(nil, ProtocolVersion, refuseCluster, "no")},
		[]any{appendRefusal(nil, ProtocolVersion, 9, strings.Repeat("r", maxReasonLen+1))},
		[]any{[]byte("DSTT\x00\x01\x01\xff\xff")},        // huge field, truncated
		[]any{[]byte("DSTT\x00\x01\x02\x01\x00\x09abc")}, // truncated reason
		[]any{[]byte("DSTT\x00\x01\x09")},                // unknown kind
		[]any{[]byte("GET / HTTP/1.1\r\n\r\n")},          // not this protocol
		[]any{[]byte("DS")},
		[]any{[]byte{}},
	)
	tr := &Transport{cfg: Config{NodeID: "n1", ClusterName: "c1", HandshakeTimeout: time.Second}, version: ProtocolVersion}
	f.Fuzz(func(t *testing.T, in []byte) {
		// The decoder alone.
		var h handshake
		var err error
		fuzzcheck.Alloc(t, "readHandshake", handshakeAllocLimit, len(in), 2, func() {
			h, err = readHandshake(bufio.NewReader(bytes.NewReader(in)))
		})
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%#v has an empty message", err)
			}
			if !errors.Is(err, ErrBadMagic) && !errors.Is(err, ErrMalformed) &&
				!errors.Is(err, io.ErrUnexpectedEOF) && !(errors.Is(err, io.EOF) && len(in) == 0) {
				t.Fatalf("readHandshake: unexpected error %v", err)
			}
		} else {
			checkHandshake(t, h, in)
		}

		// The accepting side, as a connection runs it.
		c := &pipeConn{r: bytes.NewReader(in)}
		var from dstate.NodeID
		var aerr error
		fuzzcheck.Alloc(t, "acceptHandshake", handshakeAllocLimit, len(in), 2, func() {
			from, _, aerr = tr.acceptHandshake(c, "fuzz")
		})
		var he *HandshakeError
		if aerr != nil {
			if !errors.As(aerr, &he) || !errors.Is(aerr, ErrHandshake) {
				t.Fatalf("acceptHandshake: %v (%T) is not a *HandshakeError", aerr, aerr)
			}
			if he.Error() == "" || (he.Reason == "" && he.Err == nil) {
				t.Fatalf("%#v does not say what was wrong", he)
			}
		}
		switch {
		case err != nil:
			// The same failure, reported as such, with no refusal reason.
			if aerr == nil || he.Reason != "" {
				t.Fatalf("readHandshake failed with %v, acceptHandshake with %v", err, aerr)
			}
			for _, kind := range []error{ErrBadMagic, ErrMalformed, io.ErrUnexpectedEOF, io.EOF} {
				if errors.Is(err, kind) != errors.Is(aerr, kind) {
					t.Fatalf("readHandshake failed with %v, acceptHandshake with %v", err, aerr)
				}
			}
			if c.w.Len() != 0 {
				t.Fatalf("answered %q to an unreadable hello", c.w.Bytes())
			}
		case h.kind != kindHello:
			if !errors.Is(aerr, ErrMalformed) || c.w.Len() != 0 {
				t.Fatalf("a %d message instead of a hello: %v, answered %q", h.kind, aerr, c.w.Bytes())
			}
		default:
			code, reason := tr.checkHello(h)
			reply, rerr := readHandshake(bufio.NewReader(&c.w))
			if rerr != nil {
				t.Fatalf("answered %q: %v", c.w.Bytes(), rerr)
			}
			if reason == "" {
				if aerr != nil || from == "" || string(from) != h.nodeID || reply.kind != kindHello || reply.nodeID != "n1" {
					t.Fatalf("acceptable hello %+v: from %q, %v, answered %+v", h, from, aerr, reply)
				}
				return
			}
			// Refused: the dialer reads the kind and the reason.
			if aerr == nil || he.Reason != reason || !errors.Is(aerr, refusalKind(code)) {
				t.Fatalf("hello %+v: %v, want a refusal %q", h, aerr, reason)
			}
			if reply.kind != kindRefuse || reply.code != code || reply.reason != reason[:min(len(reason), maxReasonLen)] {
				t.Fatalf("refused with %d %q, but answered %+v", code, reason, reply)
			}
			if kind := refusalKind(reply.code); kind == ErrRefused {
				t.Fatalf("refusal code %d does not say why", reply.code)
			}
		}
	})
}

// checkHandshake asserts what a decoded handshake may hold, and that it
// encodes back to the bytes it came from.
func checkHandshake(t *testing.T, h handshake, in []byte) {
	t.Helper()
	switch h.kind {
	case kindHello:
		for _, fld := range []struct {
			s string
			n int
		}{{h.cluster, h.clusterLen}, {h.nodeID, h.nodeIDLen}} {
			if fld.n > MaxIDLen && fld.s != "" || fld.n <= MaxIDLen && len(fld.s) != fld.n {
				t.Fatalf("hello field %q with declared length %d", fld.s, fld.n)
			}
		}
		if h.clusterLen <= MaxIDLen && h.nodeIDLen <= MaxIDLen {
			enc := appendHello(nil, h.version, h.cluster, h.nodeID)
			if !bytes.HasPrefix(in, enc) {
				t.Fatalf("hello %+v encodes as %q, not a prefix of %q", h, enc, in)
			}
		}
	case kindRefuse:
		if len(h.reason) > maxReasonLen {
			t.Fatalf("refusal reason of %d bytes passed the bound %d", len(h.reason), maxReasonLen)
		}
		if enc := appendRefusal(nil, h.version, h.code, h.reason); len(h.reason) > 0 && !bytes.HasPrefix(in, enc) {
			t.Fatalf("refusal %+v encodes as %q, not a prefix of %q", h, enc, in)
		}
	default:
		t.Fatalf("decoded a handshake of unknown kind %d", h.kind)
	}
}
