package conformance

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// RuntimeUnderTest is one fresh dstate.ActorRuntime handed to a
// [Runtime] subtest, with the controls the suite needs.
type RuntimeUnderTest struct {
	// Runtime is the implementation under test. It must supervise panics by
	// restarting the actor (after a backoff driven by Advance).
	Runtime dstate.ActorRuntime
	// Advance moves the runtime's clock forward by d. It must return only
	// after every timer and restart backoff due by the new time has fired,
	// in time order (including timers scheduled by timers that fired during
	// the call), and every message those timers deliver has been enqueued.
	Advance func(d time.Duration)
	// Close releases the runtime. The suite calls it once when the subtest
	// ends, after releasing every handler it blocked. Nil means nothing to
	// release.
	Close func()
	// MailboxSize, if positive, is the number of messages a mailbox accepts
	// while its handler is busy with an earlier message. Zero skips that
	// check.
	MailboxSize int
}

// Bounds of the suite's waits: every wait polls or selects until waitFor has
// passed, never sleeps.
const (
	waitFor   = 10 * time.Second
	pollEvery = time.Millisecond
	// maxFill bounds the sends that must fill a mailbox.
	maxFill = 1 << 20
)

// Runtime runs the behaviour every dstate.ActorRuntime must have
// as subtests of t. newRuntime is called once per subtest and returns a
// fresh runtime; the suite closes it when the subtest ends. Groups checks
// the optional dstate.GroupRuntime and is skipped for a runtime without
// it; Inline checks the optional dstate.InlineSender and is skipped for
// actor references without it. Callbacks runs
// a pkg/node host on the runtime and makes a state's callbacks panic: each
// mutation's caller is answered with a *dstate.CallbackPanicError, the
// state, its generation and its saves stay unchanged, nothing reaches the
// peer, and a peer's message whose decoding panics leaves the last good
// view and asks for a snapshot.
func Runtime(t *testing.T, newRuntime func(t *testing.T) RuntimeUnderTest) {
	t.Run("Ordering", func(t *testing.T) { testOrdering(t, newRuntime) })
	t.Run("Backpressure", func(t *testing.T) { testBackpressure(t, newRuntime) })
	t.Run("Stop", func(t *testing.T) { testStop(t, newRuntime) })
	t.Run("Timers", func(t *testing.T) { testTimers(t, newRuntime) })
	t.Run("Groups", func(t *testing.T) { testGroups(t, newRuntime) })
	t.Run("Panics", func(t *testing.T) { testPanics(t, newRuntime) })
	t.Run("Callbacks", func(t *testing.T) { testCallbacks(t, newRuntime) })
	t.Run("Inline", func(t *testing.T) { testInline(t, newRuntime) })
}

func testOrdering(t *testing.T, newRuntime func(*testing.T) RuntimeUnderTest) {
	t.Run("OneSender", func(t *testing.T) {
		rut := start(t, newRuntime)
		const n = 10_000
		var (
			got        []int // written by the handler only
			inHandler  atomic.Int32
			overlapped atomic.Bool
			done       = make(chan struct{})
		)
		ref, err := rut.Runtime.Spawn("ordered", func(msg any) {
			if inHandler.Add(1) != 1 {
				overlapped.Store(true)
			}
			defer inHandler.Add(-1)
			got = append(got, msg.(int))
			if len(got) == n {
				close(done)
			}
		})
		require.NoError(t, err)
		for i := range n {
			require.NoError(t, sendRetry(ref, i), "send %d", i)
		}
		waitClosed(t, done, "the actor to handle all messages")
		require.False(t, overlapped.Load(), "handler called concurrently")
		for i, v := range got {
			if v != i {
				t.Fatalf("message %d: got %d, want %d", i, v, i)
			}
		}
	})

	t.Run("ManySenders", func(t *testing.T) {
		rut := start(t, newRuntime)
		const senders, each = 4, 2_500
		type seqMsg struct{ sender, seq int }
		var (
			last       [senders]int // written by the handler only
			bad        []string     // written by the handler only
			handled    int          // written by the handler only
			inHandler  atomic.Int32
			overlapped atomic.Bool
			done       = make(chan struct{})
		)
		for i := range last {
			last[i] = -1
		}
		ref, err := rut.Runtime.Spawn("fan-in", func(msg any) {
			if inHandler.Add(1) != 1 {
				overlapped.Store(true)
			}
			defer inHandler.Add(-1)
			m := msg.(seqMsg)
			if m.seq != last[m.sender]+1 {
				bad = append(bad, fmt.Sprintf("sender %d: got seq %d after %d", m.sender, m.seq, last[m.sender]))
			}
			last[m.sender] = m.seq
			if handled++; handled == senders*each {
				close(done)
			}
		})
		require.NoError(t, err)
		errs := make(chan error, senders)
		for s := range senders {
			go func() {
				for i := range each {
					if err := sendRetry(ref, seqMsg{s, i}); err != nil {
						errs <- fmt.Errorf("sender %d, seq %d: %w", s, i, err)
						return
					}
				}
				errs <- nil
			}()
		}
		for range senders {
			select {
			case err := <-errs:
				require.NoError(t, err)
			case <-time.After(waitFor):
				t.Fatal("timed out waiting for the senders")
			}
		}
		waitClosed(t, done, "the actor to handle all messages")
		require.False(t, overlapped.Load(), "handler called concurrently")
		require.Empty(t, bad, "per-sender order violated")
	})
}

func testBackpressure(t *testing.T, newRuntime func(*testing.T) RuntimeUnderTest) {
	rut := start(t, newRuntime)
	rec, ref := spawnRecorder(t, rut, "busy")
	release := block(t, ref)

	accepted, err := fill(ref)
	require.Error(t, err, "mailbox never filled after %d sends", maxFill)
	require.ErrorIs(t, err, dstate.ErrMailboxFull)
	var sendErr *dstate.ActorSendError
	require.ErrorAs(t, err, &sendErr)
	require.Equal(t, "busy", sendErr.Actor)
	if rut.MailboxSize > 0 {
		require.Equal(t, rut.MailboxSize, accepted, "messages accepted while the handler was busy")
	}
	require.ErrorIs(t, ref.Send("still full"), dstate.ErrMailboxFull)

	release()
	require.Eventually(t, func() bool { return rec.len() == accepted },
		waitFor, pollEvery, "the accepted messages were not all handled")
	require.NoError(t, ref.Send("after"), "send after the mailbox drained")
	rec.sync(t, ref)
	require.Equal(t, 1, rec.count("after"))
	require.Zero(t, rec.count("still full"), "a rejected message was delivered")
	require.False(t, rec.overlapped.Load(), "handler called concurrently")
}

func testStop(t *testing.T, newRuntime func(*testing.T) RuntimeUnderTest) {
	t.Run("SendAfterStop", func(t *testing.T) {
		rut := start(t, newRuntime)
		_, ref := spawnRecorder(t, rut, "stopped")
		ref.Stop()
		err := ref.Send("late")
		require.ErrorIs(t, err, dstate.ErrActorStopped)
		var sendErr *dstate.ActorSendError
		require.ErrorAs(t, err, &sendErr)
		require.Equal(t, "stopped", sendErr.Actor)
		ref.Stop() // idempotent
		require.ErrorIs(t, ref.Send("later"), dstate.ErrActorStopped)
	})

	t.Run("ConcurrentStop", func(t *testing.T) {
		rut := start(t, newRuntime)
		_, ref := spawnRecorder(t, rut, "stormed")
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(ref.Stop)
		}
		wg.Wait()
		require.ErrorIs(t, ref.Send("late"), dstate.ErrActorStopped)
	})

	t.Run("StopFromHandler", func(t *testing.T) {
		rut := start(t, newRuntime)
		stopped := make(chan struct{})
		ref, err := rut.Runtime.Spawn("self-stopper", func(msg any) {
			if self, ok := msg.(dstate.ActorRef); ok {
				self.Stop()
				close(stopped)
			}
		})
		require.NoError(t, err)
		require.NoError(t, ref.Send(ref))
		waitClosed(t, stopped, "the handler to stop its own actor")
		require.ErrorIs(t, ref.Send("late"), dstate.ErrActorStopped)
	})

	t.Run("DuplicateName", func(t *testing.T) {
		rut := start(t, newRuntime)
		_, first := spawnRecorder(t, rut, "twin")
		_, err := rut.Runtime.Spawn("twin", func(any) {})
		require.Error(t, err, "spawned a second running actor named twin")
		first.Stop()
		rec, second := spawnRecorder(t, rut, "twin") // the name is free again
		require.NoError(t, second.Send("hello"))
		rec.sync(t, second)
		require.Equal(t, []any{"hello"}, rec.payload())
		require.ErrorIs(t, first.Send("x"), dstate.ErrActorStopped, "the old ref reached the new actor")
	})
}

func testTimers(t *testing.T, newRuntime func(*testing.T) RuntimeUnderTest) {
	t.Run("SendAfter", func(t *testing.T) {
		rut := start(t, newRuntime)
		rec, ref := spawnRecorder(t, rut, "after")
		h := rut.Runtime.SendAfter(ref, 10*time.Second, "fire")
		require.NotNil(t, h)

		rut.Advance(9 * time.Second)
		rec.sync(t, ref)
		require.Empty(t, rec.payload(), "fired before its delay")

		rut.Advance(time.Second)
		rec.sync(t, ref)
		require.Equal(t, []any{"fire"}, rec.payload(), "after its delay")

		rut.Advance(time.Minute)
		rec.sync(t, ref)
		require.Equal(t, []any{"fire"}, rec.payload(), "fired more than once")
		h.Cancel() // after firing: a no-op
	})

	t.Run("SendInterval", func(t *testing.T) {
		rut := start(t, newRuntime)
		rec, ref := spawnRecorder(t, rut, "ticker")
		h := rut.Runtime.SendInterval(ref, time.Second, "tick")
		require.NotNil(t, h)

		rut.Advance(999 * time.Millisecond)
		rec.sync(t, ref)
		require.Zero(t, rec.count("tick"), "ticked before one interval")

		rut.Advance(time.Millisecond)
		rec.sync(t, ref)
		require.Equal(t, 1, rec.count("tick"), "ticks after one interval")

		for i := 2; i <= 4; i++ {
			rut.Advance(time.Second)
			rec.sync(t, ref)
			require.Equal(t, i, rec.count("tick"), "ticks after %d intervals", i)
		}

		rut.Advance(3 * time.Second) // three ticks in one Advance
		rec.sync(t, ref)
		require.Equal(t, 7, rec.count("tick"), "ticks after 7 intervals")

		h.Cancel()
		h.Cancel()
		rut.Advance(10 * time.Second)
		rec.sync(t, ref)
		require.Equal(t, 7, rec.count("tick"), "ticked after Cancel")
	})

	t.Run("Cancel", func(t *testing.T) {
		rut := start(t, newRuntime)
		rec, ref := spawnRecorder(t, rut, "cancelled")
		once := rut.Runtime.SendAfter(ref, time.Second, "once")
		once.Cancel()
		once.Cancel()
		every := rut.Runtime.SendInterval(ref, time.Second, "every")
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(every.Cancel)
		}
		wg.Wait()
		rut.Advance(5 * time.Second)
		rec.sync(t, ref)
		require.Empty(t, rec.payload(), "a cancelled timer fired")

		// Cancelling after some ticks stops the rest.
		again := rut.Runtime.SendInterval(ref, time.Second, "again")
		rut.Advance(2 * time.Second)
		again.Cancel()
		rut.Advance(5 * time.Second)
		rec.sync(t, ref)
		require.Equal(t, 2, rec.count("again"))
	})

	t.Run("StopCancels", func(t *testing.T) {
		rut := start(t, newRuntime)
		old, ref := spawnRecorder(t, rut, "victim")
		after := rut.Runtime.SendAfter(ref, time.Second, "late")
		every := rut.Runtime.SendInterval(ref, time.Second, "tick")
		ref.Stop()

		// A new actor of the same name must not inherit the timers.
		rec, fresh := spawnRecorder(t, rut, "victim")
		rut.Advance(5 * time.Second)
		rec.sync(t, fresh)
		require.Empty(t, rec.payload(), "a stopped actor's timer reached its namesake")
		require.Empty(t, old.payload(), "a stopped actor handled a timer message")
		after.Cancel() // cancelling a timer its target's Stop cancelled is a no-op
		every.Cancel()
	})

	t.Run("FullMailboxDropsTick", func(t *testing.T) {
		rut := start(t, newRuntime)
		rec, ref := spawnRecorder(t, rut, "flooded")
		release := block(t, ref)
		accepted, err := fill(ref)
		require.ErrorIs(t, err, dstate.ErrMailboxFull)

		h := rut.Runtime.SendInterval(ref, time.Second, "tick")
		t.Cleanup(h.Cancel)
		advanced := make(chan struct{})
		go func() {
			rut.Advance(3 * time.Second)
			close(advanced)
		}()
		waitClosed(t, advanced, "Advance, blocked by a timer delivering to a full mailbox")

		release()
		require.Eventually(t, func() bool { return rec.len() == accepted },
			waitFor, pollEvery, "the accepted messages were not all handled")
		rec.sync(t, ref)
		require.Zero(t, rec.count("tick"), "ticks delivered to a full mailbox")

		rut.Advance(time.Second) // the interval survives dropped ticks
		rec.sync(t, ref)
		require.Equal(t, 1, rec.count("tick"), "ticks after the mailbox drained")
	})
}

func testGroups(t *testing.T, newRuntime func(*testing.T) RuntimeUnderTest) {
	rut := start(t, newRuntime)
	rt, ok := rut.Runtime.(dstate.GroupRuntime)
	if !ok {
		t.Skipf("%T has no processing groups (dstate.GroupRuntime)", rut.Runtime)
	}
	recA, a := spawnRecorder(t, rut, "a")
	recB, b := spawnRecorder(t, rut, "b")
	recC, c := spawnRecorder(t, rut, "c")
	syncAll := func() {
		t.Helper()
		recA.sync(t, a)
		recB.sync(t, b)
		recC.sync(t, c)
	}

	require.NoError(t, rt.JoinGroup("g", a))
	require.NoError(t, rt.JoinGroup("g", a), "joining twice")
	require.NoError(t, rt.JoinGroup("g", b))
	require.Equal(t, []string{"a", "b"}, members(t, rt, "g"))

	require.NoError(t, rt.BroadcastGroup("g", "hello"))
	syncAll()
	require.Equal(t, []any{"hello"}, recA.payload())
	require.Equal(t, []any{"hello"}, recB.payload())
	require.Empty(t, recC.payload(), "a non-member got a broadcast")

	require.NoError(t, rt.LeaveGroup("g", b))
	require.NoError(t, rt.LeaveGroup("g", b), "leaving twice")
	require.NoError(t, rt.LeaveGroup("other", c), "leaving a group never joined")
	require.Equal(t, []string{"a"}, members(t, rt, "g"))
	require.NoError(t, rt.BroadcastGroup("g", "again"))
	syncAll()
	require.Equal(t, []any{"hello", "again"}, recA.payload())
	require.Equal(t, []any{"hello"}, recB.payload(), "a member that left got a broadcast")

	// A member with a full mailbox fails the broadcast; the others get it.
	require.NoError(t, rt.JoinGroup("g", c))
	release := block(t, c)
	accepted, err := fill(c)
	require.ErrorIs(t, err, dstate.ErrMailboxFull)
	err = rt.BroadcastGroup("g", "partial")
	require.ErrorIs(t, err, dstate.ErrMailboxFull)
	var groupErr *dstate.GroupError
	require.ErrorAs(t, err, &groupErr)
	require.Equal(t, "g", groupErr.Group)
	var sendErr *dstate.ActorSendError
	require.ErrorAs(t, err, &sendErr)
	require.Equal(t, "c", sendErr.Actor)
	recA.sync(t, a)
	require.Equal(t, []any{"hello", "again", "partial"}, recA.payload())
	release()
	require.Eventually(t, func() bool { return recC.len() == accepted },
		waitFor, pollEvery, "the accepted messages were not all handled")
	recC.sync(t, c)

	// A stopped member leaves its groups.
	a.Stop()
	require.Eventually(t, func() bool {
		names, err := memberNames(rt, "g")
		return err == nil && slices.Equal(names, []string{"c"})
	}, waitFor, pollEvery, "a stopped actor stayed in its group")
	require.NoError(t, rt.BroadcastGroup("g", "last"))
	recC.sync(t, c)
	require.Equal(t, 1, recC.count("last"))

	// An unknown group has no members and broadcasting to it reaches no one.
	if refs, err := rt.GroupMembers("nobody"); err == nil {
		require.Empty(t, refs)
	}
	require.NoError(t, rt.BroadcastGroup("nobody", "void"))
}

func testPanics(t *testing.T, newRuntime func(*testing.T) RuntimeUnderTest) {
	rut := start(t, newRuntime)
	rec, ref := spawnRecorder(t, rut, "fragile")
	// waitHandled advances the clock while polling, so that restart
	// backoffs driven by it elapse.
	waitHandled := func(want ...any) {
		t.Helper()
		require.Eventually(t, func() bool {
			rut.Advance(time.Second)
			return slices.Equal(rec.payload(), want)
		}, waitFor, pollEvery, "messages after a panic were not handled")
	}

	require.NoError(t, ref.Send("a"))
	require.NoError(t, ref.Send(panicMsg("boom")))
	require.NoError(t, ref.Send("b"))
	waitHandled("a", "b")

	// Consecutive panics, including with an error value, still recover.
	require.NoError(t, ref.Send(panicMsg("boom 1")))
	require.NoError(t, ref.Send(panicErrMsg{errors.New("boom 2")}))
	require.NoError(t, ref.Send(panicMsg("boom 3")))
	require.NoError(t, ref.Send("c"))
	waitHandled("a", "b", "c")

	// Messages sent after the panics are handled too.
	require.NoError(t, ref.Send("d"))
	waitHandled("a", "b", "c", "d")
	require.False(t, rec.overlapped.Load(), "handler called concurrently")
}

// start creates the runtime for one subtest and closes it at the end.
func start(t *testing.T, newRuntime func(*testing.T) RuntimeUnderTest) RuntimeUnderTest {
	t.Helper()
	rut := newRuntime(t)
	require.NotNil(t, rut.Runtime, "RuntimeUnderTest.Runtime")
	require.NotNil(t, rut.Advance, "RuntimeUnderTest.Advance")
	if rut.Close != nil {
		t.Cleanup(rut.Close)
	}
	return rut
}

// Messages the recorder treats specially; everything else is payload.
type (
	// marker is a sync point: see recorder.sync.
	marker uint64
	// blockMsg makes the handler close started and wait for release.
	blockMsg struct{ started, release chan struct{} }
	// panicMsg makes the handler panic with the string.
	panicMsg string
	// panicErrMsg makes the handler panic with the error.
	panicErrMsg struct{ err error }
	// fillMsg is the payload fill sends.
	fillMsg int
)

// recorder is the state of an actor that records what it handles.
type recorder struct {
	mu      sync.Mutex
	msgs    []any
	markers map[marker]bool

	nextMarker atomic.Uint64
	inHandler  atomic.Int32
	overlapped atomic.Bool
}

func spawnRecorder(t *testing.T, rut RuntimeUnderTest, name string) (*recorder, dstate.ActorRef) {
	t.Helper()
	rec := &recorder{markers: make(map[marker]bool)}
	ref, err := rut.Runtime.Spawn(name, rec.handle)
	require.NoError(t, err, "spawn %q", name)
	require.NotNil(t, ref)
	require.Equal(t, name, ref.Name())
	return rec, ref
}

func (r *recorder) handle(msg any) {
	if r.inHandler.Add(1) != 1 {
		r.overlapped.Store(true)
	}
	defer r.inHandler.Add(-1)
	switch m := msg.(type) {
	case blockMsg:
		close(m.started)
		<-m.release
	case panicMsg:
		panic(string(m))
	case panicErrMsg:
		panic(m.err)
	case marker:
		r.mu.Lock()
		r.markers[m] = true
		r.mu.Unlock()
	default:
		r.mu.Lock()
		r.msgs = append(r.msgs, msg)
		r.mu.Unlock()
	}
}

// payload returns a copy of the recorded messages, in order.
func (r *recorder) payload() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// count returns how many recorded messages equal v.
func (r *recorder) count(v any) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs {
		if m == v {
			n++
		}
	}
	return n
}

// sync sends a fresh marker through ref and waits until the handler has
// seen it. Mailboxes are FIFO, so every message enqueued before sync was
// called (by Send or by a timer that fired in an Advance that returned) has
// been handled when sync returns.
func (r *recorder) sync(t *testing.T, ref dstate.ActorRef) {
	t.Helper()
	m := marker(r.nextMarker.Add(1))
	require.NoError(t, sendRetry(ref, m), "send a sync marker to %q", ref.Name())
	require.Eventually(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.markers[m]
	}, waitFor, pollEvery, "actor %q did not handle its sync marker", ref.Name())
}

// block makes ref's handler wait, once it has handled everything queued
// before, and returns the (idempotent) function that releases it. The
// handler is released when the test ends at the latest.
func block(t *testing.T, ref dstate.ActorRef) (release func()) {
	t.Helper()
	b := blockMsg{started: make(chan struct{}), release: make(chan struct{})}
	require.NoError(t, sendRetry(ref, b), "send the blocking message to %q", ref.Name())
	var once sync.Once
	release = func() { once.Do(func() { close(b.release) }) }
	t.Cleanup(release) // runs before the runtime's Close, registered earlier
	waitClosed(t, b.started, "the handler to block")
	return release
}

// fill sends fillMsgs to ref until a send fails, and returns how many it
// accepted and the failure (nil if maxFill were accepted).
func fill(ref dstate.ActorRef) (int, error) {
	for i := range maxFill {
		if err := ref.Send(fillMsg(i)); err != nil {
			return i, err
		}
	}
	return maxFill, nil
}

// sendRetry sends msg, retrying while the mailbox is full, until waitFor
// has passed.
func sendRetry(ref dstate.ActorRef, msg any) error {
	deadline := time.Now().Add(waitFor)
	for {
		err := ref.Send(msg)
		if !errors.Is(err, dstate.ErrMailboxFull) || time.Now().After(deadline) {
			return err
		}
		runtime.Gosched()
	}
}

// waitClosed waits for ch to be closed, failing the test after waitFor.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("timed out after %v waiting for %s", waitFor, what)
	}
}

// members returns the sorted names of group's members.
func members(t *testing.T, rt dstate.GroupRuntime, group string) []string {
	t.Helper()
	names, err := memberNames(rt, group)
	require.NoError(t, err, "members of %q", group)
	return names
}

// memberNames returns the sorted names of group's members.
func memberNames(rt dstate.GroupRuntime, group string) ([]string, error) {
	refs, err := rt.GroupMembers(group)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(refs))
	for i, ref := range refs {
		names[i] = ref.Name()
	}
	slices.Sort(names)
	return names, nil
}
