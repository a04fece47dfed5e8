//go:build unix

package transport

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// writeNow never waits for the socket: against a peer that does not read,
// it takes what the socket has room for, then nothing, each time at once; over a closed connection it reports an
// error instead of blocking or panicking.
func TestWriteNowNeverWaits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	peer := <-accepted
	require.NotNil(t, peer)
	t.Cleanup(func() { _ = peer.Close() })
	require.NoError(t, c.(*net.TCPConn).SetWriteBuffer(16<<10))

	l := &link{raw: c, conn: c, now: newNowWriter(c)}
	require.NotNil(t, l.now, "a TCP connection takes direct writes")
	b := make([]byte, 64<<10)
	empty := false
	for i := 0; i < 10_000 && !empty; i++ { // the peer never reads: the socket fills
		n, err := l.writeNow(b)
		if n == 0 {
			require.Error(t, err, "a write that took nothing says why")
			empty = true
		}
	}
	require.True(t, empty, "the socket never filled")

	require.NoError(t, c.Close())
	n, err := l.writeNow(b)
	require.Zero(t, n)
	require.Error(t, err, "a write on a closed connection fails")
}
