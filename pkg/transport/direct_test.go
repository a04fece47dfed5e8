package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// directFrame is frame i of the direct-write tests: its number, then a
// filler derived from it, so a frame cut or spliced anywhere is seen.
func directFrame(i, size int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(i))
	for len(b) < size {
		b = append(b, byte(i+len(b)))
	}
	return b
}

// A Send that finds the writer idle writes its frame itself. When the peer
// stops reading, the socket fills: a direct write then leaves what it could
// not write (or all of the frame) to the writer, the frames queue, and when
// the peer reads again every frame arrives whole and in order.
func TestDirectWritesKeepOrderThroughAFullSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	resume := make(chan struct{})
	type result struct {
		frames [][]byte
		err    error
	}
	const frames, size = 2000, 8 << 10
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := readHandshake(br); err != nil {
			got <- result{err: err}
			return
		}
		if _, err := c.Write(appendHello(nil, ProtocolVersion, "test", "b")); err != nil {
			got <- result{err: err}
			return
		}
		<-resume // stop reading until the sender's socket is full
		m := msgReader{r: br, br: br, maxFrame: 1 << 20, maxMessage: 1 << 20}
		var r result
		for len(r.frames) < frames {
			f, err := m.next()
			if err != nil {
				r.err = err
				break
			}
			r.frames = append(r.frames, bytes.Clone(f))
		}
		got <- r
	}()

	a := startNode(t, "a", func(c *Config) { c.QueueSize = frames })
	a.directGap = 0 // every Send that finds the writer idle writes directly
	a.SetPeer("b", ln.Addr().String())
	a.waitConnected(t, "b", true)
	a.mu.RLock()
	p := a.peers["b"]
	a.mu.RUnlock()
	require.Eventually(t, func() bool { // the writer has taken the connection
		p.wmu.Lock()
		defer p.wmu.Unlock()
		return p.live != nil
	}, waitTimeout, pollEvery)
	require.NoError(t, a.Send(dstate.NodeID("b"), directFrame(0, size)))
	require.NotZero(t, p.lastDirect.Load(), "a lone frame to an idle writer was not written directly")
	sawFull := false
	for i := 1; i < frames; i++ {
		require.NoError(t, a.Send(dstate.NodeID("b"), directFrame(i, size)))
		sawFull = sawFull || p.congested.Load()
	}
	require.True(t, sawFull, "the socket never filled: the test did not reach the path it is for")
	close(resume)
	var r result
	select {
	case r = <-got:
	case <-time.After(waitTimeout):
		t.Fatal("the peer did not receive every frame")
	}
	require.NoError(t, r.err)
	require.Len(t, r.frames, frames)
	for i, f := range r.frames {
		require.Equal(t, directFrame(i, size), f, "frame %d", i)
	}
	require.Eventually(t, func() bool { return p.pending.Load() == 0 }, waitTimeout, pollEvery, "frames still pending after all arrived")
	require.Zero(t, a.Stats().QueueDrops)
}
