package gosched_test

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/gosched"
)

// goid is the calling goroutine's ID, read from its stack header: tests use
// it to tell where a handler ran.
func goid() uint64 {
	var b [64]byte
	s := b[:runtime.Stack(b[:], false)]
	s = bytes.TrimPrefix(s, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(s[:bytes.IndexByte(s, ' ')]), 10, 64)
	return id
}

// ran is a message that records the goroutine its handler ran on.
type ran struct {
	name string
	on   uint64
}

// inlineRecorder spawns an actor recording every message with the
// goroutine it ran on; a *func() message is called first.
func inlineRecorder(t *testing.T, rt *gosched.Runtime, name string) (*gosched.Actor, func() []ran) {
	t.Helper()
	var mu sync.Mutex
	var log []ran
	a, err := rt.SpawnActor(name, func(msg any) {
		if f, ok := msg.(func()); ok {
			f()
			return
		}
		mu.Lock()
		log = append(log, ran{name: msg.(string), on: goid()})
		mu.Unlock()
	})
	require.NoError(t, err)
	return a, func() []ran {
		mu.Lock()
		defer mu.Unlock()
		return append([]ran(nil), log...)
	}
}

// sendInlineWhenIdle sends msg with SendInline until a send runs on the
// caller (the actor's goroutine must have parked first) and returns the
// caller's goroutine ID.
func sendInlineWhenIdle(t *testing.T, a *gosched.Actor, handled func() []ran) uint64 {
	t.Helper()
	me := goid()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		n := len(handled())
		_, err := a.SendInline("probe")
		require.NoError(t, err)
		if h := handled(); len(h) > n && h[len(h)-1].on == me {
			return me
		}
		time.Sleep(pollEvery) // the actor's goroutine has not parked yet
	}
	t.Fatal("SendInline never ran the handler on the caller of an idle actor")
	return 0
}

func TestSendInlineRunsOnTheCallerOfAnIdleActor(t *testing.T) {
	rt, _ := newRuntime(t, gosched.Config{})
	a, handled := inlineRecorder(t, rt, "inline")
	me := sendInlineWhenIdle(t, a, handled)

	// Messages sent during an inline run queue behind it and run on the
	// actor's goroutine, in order.
	before := len(handled())
	var ref dstate.InlineSender = a
	ran, err := ref.SendInline(func() {
		require.NoError(t, a.Send("second"))
		ran, err := a.SendInline("third") // busy: queued, not nested
		require.NoError(t, err)
		require.False(t, ran)
	})
	require.NoError(t, err)
	require.True(t, ran)
	require.Eventually(t, func() bool { return len(handled()) == before+2 }, waitFor, pollEvery)
	got := handled()[before:]
	require.Equal(t, "second", got[0].name)
	require.Equal(t, "third", got[1].name)
	require.NotEqual(t, me, got[0].on, "a message queued during an inline run ran on the caller")
	require.NotEqual(t, me, got[1].on, "a message queued during an inline run ran on the caller")
	require.Zero(t, rt.Stats().SendsRejected)
}

func TestSendInlineQueuesBehindABusyActor(t *testing.T) {
	rt, _ := newRuntime(t, gosched.Config{})
	a, handled := inlineRecorder(t, rt, "busy")
	started, release := make(chan struct{}), make(chan struct{})
	require.NoError(t, a.Send(func() { close(started); <-release }))
	waitClosed(t, started, "the handler to block")

	ran, err := a.SendInline("queued")
	require.NoError(t, err)
	require.False(t, ran)
	require.Empty(t, handled(), "SendInline ran a message while the handler was running")
	close(release)
	require.Eventually(t, func() bool { return len(handled()) == 1 }, waitFor, pollEvery)
	require.NotEqual(t, goid(), handled()[0].on)
}

func TestSendInlinePanicIsSupervisedByTheActor(t *testing.T) {
	rt, fc := newRuntime(t, gosched.Config{RestartBackoff: 10 * time.Millisecond})
	a, handled := inlineRecorder(t, rt, "fragile")
	sendInlineWhenIdle(t, a, handled)
	before := len(handled())

	// The panic does not reach the caller, and the caller does not serve
	// the backoff: SendInline returns while the clock stands still.
	ran, err := a.SendInline(func() { panic("boom") })
	require.NoError(t, err)
	require.True(t, ran)
	ran, err = a.SendInline("after") // waits out the backoff on the actor
	require.NoError(t, err)
	require.False(t, ran)
	require.Eventually(t, func() bool { return fc.Pending() == 1 }, waitFor, pollEvery, "no restart backoff scheduled")
	require.Len(t, handled(), before, "a message ran during the restart backoff")
	fc.Advance(10 * time.Millisecond)
	require.Eventually(t, func() bool { return len(handled()) == before+1 }, waitFor, pollEvery)
	require.Equal(t, "after", handled()[before].name)
	st := rt.Stats()
	require.Equal(t, uint64(1), st.Panics)
	require.Equal(t, uint64(1), st.Restarts)
}

func TestSendInlinePanicUnderStopOnPanicStopsTheActor(t *testing.T) {
	rt, _ := newRuntime(t, gosched.Config{Supervision: gosched.StopOnPanic})
	a, handled := inlineRecorder(t, rt, "fragile")
	sendInlineWhenIdle(t, a, handled)
	_, err := a.SendInline(func() { panic("boom") })
	require.NoError(t, err)
	waitClosed(t, a.Done(), "the actor to stop after an inline panic")
	_, err = a.SendInline("late")
	require.ErrorIs(t, err, dstate.ErrActorStopped)
}

func TestStopDuringAnInlineRunWaitsForIt(t *testing.T) {
	rt, _ := newRuntime(t, gosched.Config{})
	a, handled := inlineRecorder(t, rt, "stopped")
	sendInlineWhenIdle(t, a, handled)
	before := len(handled())

	started, release := make(chan struct{}), make(chan struct{})
	returned := make(chan error, 1)
	go func() {
		_, err := a.SendInline(func() { close(started); <-release })
		returned <- err
	}()
	waitClosed(t, started, "the inline run to start")
	require.NoError(t, a.Send("discarded"))
	a.Stop()
	require.False(t, isClosed(a.Done()), "Done closed while an inline run was in progress")
	close(release)
	require.NoError(t, <-returned)
	waitClosed(t, a.Done(), "the actor to finish after the inline run")
	require.Len(t, handled(), before, "a message queued before Stop ran after it")
	_, err := a.SendInline("late")
	require.ErrorIs(t, err, dstate.ErrActorStopped)
}
