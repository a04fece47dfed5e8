//go:build unix

package transport

import (
	"errors"
	"net"
	"syscall"
)

// nowWriter writes on a plain TCP connection without waiting: one write(2)
// on the non-blocking socket, which takes what the socket buffer has room
// for. It arms no deadline, so a direct write leaves no timer behind to
// wake the process later. Its fields are guarded by the peer's wmu.
type nowWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // w.write, bound once: no allocation per write
	buf []byte
	n   int
	err error
}

func newNowWriter(c net.Conn) *nowWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &nowWriter{rc: rc}
	w.fn = w.write
	return w
}

func (w *nowWriter) write(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), w.buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		w.n, w.err = n, err
		return true // never wait for the socket: the writer does
	}
}

// writeNow writes as much of b as the socket takes at once and returns how
// much that was (0 when the socket is full or the connection failed).
func (l *link) writeNow(b []byte) (int, error) {
	w := l.now
	if w == nil {
		return 0, errNoDirect
	}
	w.buf = b
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.buf, w.n, w.err = nil, 0, nil
	if err == nil {
		err = werr
	}
	return max(n, 0), err
}
