package transport

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The frame queue keeps order, refuses a frame over its limit, signals the
// writer when it goes from empty to non-empty, and a take empties it.
func TestFrameQueue(t *testing.T) {
	q := newFrameQueue(3)
	require.Zero(t, q.len())
	require.Empty(t, q.take(nil), "an empty queue")
	for i := range 3 {
		require.True(t, q.push([]byte{byte(i)}))
	}
	require.False(t, q.push([]byte{9}), "a fourth frame in a queue of three")
	require.Len(t, q.ready, 1, "the first push signals the writer")
	<-q.ready
	got := q.take(nil)
	require.Equal(t, [][]byte{{0}, {1}, {2}}, got)
	require.Zero(t, q.len())
	require.True(t, q.push([]byte{3}), "room again after a take")
	require.Len(t, q.ready, 1, "a push into an emptied queue signals again")
	require.True(t, q.push([]byte{4}))
	require.Len(t, q.ready, 1)
	require.Equal(t, 2, q.drain())
	require.Zero(t, q.len())
}

// Concurrent senders and one taker: every frame comes out exactly once,
// each sender's frames in order, and a sender that saw its push accepted
// always left a signal or a taker that will see its frame.
func TestFrameQueueConcurrent(t *testing.T) {
	q := newFrameQueue(64)
	const senders, each = 4, 5000
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := 0; i < each; {
				if q.push([]byte(fmt.Sprintf("%d:%d", s, i))) {
					i++
				}
			}
		})
	}
	next := make([]int, senders)
	seen := 0
	var spare [][]byte
	for seen < senders*each {
		<-q.ready
		batch := q.take(spare)
		for _, f := range batch {
			var s, i int
			_, err := fmt.Sscanf(string(f), "%d:%d", &s, &i)
			require.NoError(t, err)
			require.Equal(t, next[s], i, "sender %d out of order", s)
			next[s]++
			seen++
		}
		clear(batch)
		spare = batch[:0]
	}
	wg.Wait()
	require.Zero(t, q.len())
}

// Frames ready when the writer finds its connection hung up stay queued
// (none is lost or reordered), and the writer on the next connection writes
// them first, without a new Send to wake it.
func TestQueuedFramesOutliveAHungUpConnection(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NodeID = "a"
	tr, err := New(cfg)
	require.NoError(t, err)
	p := newPeer(context.Background(), "b", "127.0.0.1:1", 16)
	defer p.stop()
	for i := range 3 {
		p.pending.Add(1) // as Send counts them
		require.True(t, p.queue.push([]byte(fmt.Sprintf("frame %d", i))))
	}

	deadConn, other := net.Pipe()
	defer other.Close()
	dead := &link{raw: deadConn, conn: deadConn, dead: make(chan struct{})}
	close(dead.dead)
	exit, err := tr.writeLoop(p, dead)
	require.False(t, exit)
	require.ErrorIs(t, err, errHungUp)
	require.Equal(t, 3, p.queue.len(), "frames ready at the hang-up")
	require.Empty(t, p.carry)
	// Whether or not that writer took the wake-up, nothing else sends one.
	select {
	case <-p.queue.ready:
	default:
	}

	local, remote := net.Pipe()
	next := &link{raw: local, conn: local, dead: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := tr.writeLoop(p, next)
		done <- err
	}()
	require.NoError(t, remote.SetReadDeadline(time.Now().Add(5*time.Second)))
	m := msgReader{r: remote, maxFrame: 1 << 20, maxMessage: 1 << 20}
	for i := range 3 {
		f, err := m.next()
		require.NoError(t, err, "frame %d on the next connection", i)
		require.Equal(t, fmt.Sprintf("frame %d", i), string(f))
	}
	require.Eventually(t, func() bool { return p.pending.Load() == 0 }, 5*time.Second, time.Millisecond, "frames written and counted")
	require.Zero(t, p.queue.len())
	close(next.dead)
	require.ErrorIs(t, <-done, errHungUp)
	_ = remote.Close()
}
