package conformance

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// inlineSend is one message of testInline: sender and its sequence number.
type inlineSend struct{ sender, seq int }

// testInline checks the optional dstate.InlineSender: concurrent SendInline
// and Send calls never overlap in the handler and keep each sender's
// order; a busy actor queues what SendInline gives it; a stopped actor
// refuses it.
func testInline(t *testing.T, newRuntime func(*testing.T) RuntimeUnderTest) {
	t.Run("ConcurrentSendersKeepTheirOrder", func(t *testing.T) {
		rut := start(t, newRuntime)
		rec, ref := spawnRecorder(t, rut, "inline")
		in := inlineSender(t, ref)
		const senders, each = 4, 500
		var wg sync.WaitGroup
		for s := range senders {
			wg.Go(func() {
				for i := range each {
					msg := inlineSend{sender: s, seq: i}
					var err error
					if (s+i)%2 == 0 {
						_, err = in.SendInline(msg)
					} else {
						err = ref.Send(msg)
					}
					for err != nil { // a full mailbox: try again
						require.ErrorIs(t, err, dstate.ErrMailboxFull)
						_, err = in.SendInline(msg)
					}
				}
			})
		}
		wg.Wait()
		rec.sync(t, ref)
		require.False(t, rec.overlapped.Load(), "the handler ran concurrently with itself")
		next := make([]int, senders)
		for _, m := range rec.payload() {
			s := m.(inlineSend)
			require.Equal(t, next[s.sender], s.seq, "sender %d's messages out of order", s.sender)
			next[s.sender]++
		}
		for s := range senders {
			require.Equal(t, each, next[s], "sender %d's messages handled", s)
		}
	})
	t.Run("BusyActorQueues", func(t *testing.T) {
		rut := start(t, newRuntime)
		rec, ref := spawnRecorder(t, rut, "busy")
		in := inlineSender(t, ref)
		release := block(t, ref)
		for i := range 3 {
			ran, err := in.SendInline(fmt.Sprint(i))
			require.NoError(t, err)
			require.False(t, ran, "SendInline ran a message while the handler was busy")
		}
		require.Zero(t, rec.len())
		release()
		rec.sync(t, ref)
		require.Equal(t, []any{"0", "1", "2"}, rec.payload())
	})
	t.Run("StoppedActorRefuses", func(t *testing.T) {
		rut := start(t, newRuntime)
		rec, ref := spawnRecorder(t, rut, "stopped")
		in := inlineSender(t, ref)
		ref.Stop()
		ran, err := in.SendInline("late")
		require.ErrorIs(t, err, dstate.ErrActorStopped)
		require.False(t, ran)
		require.Zero(t, rec.len())
	})
}

// inlineSender returns ref as a dstate.InlineSender, skipping the test when
// the runtime does not offer the capability.
func inlineSender(t *testing.T, ref dstate.ActorRef) dstate.InlineSender {
	t.Helper()
	in, ok := ref.(dstate.InlineSender)
	if !ok {
		t.Skip("the runtime's actor references do not implement dstate.InlineSender")
	}
	return in
}
