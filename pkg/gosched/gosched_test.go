package gosched_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest/conformance"
	"github.com/dstate-go/dstate/pkg/gosched"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	waitFor   = 10 * time.Second
	pollEvery = time.Millisecond
)

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newRuntime returns a runtime on a fresh TestClock, closed when t ends.
func newRuntime(t testing.TB, cfg gosched.Config) (*gosched.Runtime, *dstatetest.TestClock) {
	t.Helper()
	fc := dstatetest.NewTestClockAtTime(epoch)
	cfg.Clock = fc
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	rt, err := gosched.New(cfg)
	require.NoError(t, err)
	t.Cleanup(rt.Close)
	return rt, fc
}

func waitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("timed out after %v waiting for %s", waitFor, what)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// logCapture is a slog.Handler that keeps every record, for assertions.
type logCapture struct {
	mu      sync.Mutex
	records []capturedRecord
}

type capturedRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	rec := capturedRecord{level: r.Level, msg: r.Message, attrs: make(map[string]string)}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, rec)
	return nil
}

func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

// errorsFor returns the error records that name actor.
func (c *logCapture) errorsFor(actor string) []capturedRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []capturedRecord
	for _, r := range c.records {
		if r.level == slog.LevelError && r.attrs["actor"] == actor {
			out = append(out, r)
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	for _, size := range []int{gosched.DefaultMailboxSize, 8} {
		t.Run(fmt.Sprintf("MailboxSize=%d", size), func(t *testing.T) {
			conformance.Runtime(t, func(t *testing.T) conformance.RuntimeUnderTest {
				fc := dstatetest.NewTestClockAtTime(epoch)
				rt, err := gosched.New(gosched.Config{
					MailboxSize: size,
					Supervision: gosched.RestartOnPanic,
					Clock:       fc,
					Logger:      discardLogger(),
				})
				require.NoError(t, err)
				return conformance.RuntimeUnderTest{
					Runtime:     rt,
					Advance:     fc.Advance,
					Close:       rt.Close,
					MailboxSize: size,
				}
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name      string
		cfg       gosched.Config
		wantField string // "" means valid
	}{
		{name: "zero value", cfg: gosched.Config{}},
		{name: "defaults", cfg: gosched.DefaultConfig()},
		{name: "stop on panic", cfg: gosched.Config{Supervision: gosched.StopOnPanic}},
		{name: "explicit backoffs", cfg: gosched.Config{RestartBackoff: 2 * time.Second, MaxRestartBackoff: 5 * time.Second}},
		{name: "equal backoffs", cfg: gosched.Config{RestartBackoff: time.Second, MaxRestartBackoff: time.Second}},
		{name: "negative mailbox", cfg: gosched.Config{MailboxSize: -1}, wantField: "MailboxSize"},
		{name: "unknown supervision", cfg: gosched.Config{Supervision: 7}, wantField: "Supervision"},
		{name: "negative backoff", cfg: gosched.Config{RestartBackoff: -time.Millisecond}, wantField: "RestartBackoff"},
		{name: "negative max backoff", cfg: gosched.Config{MaxRestartBackoff: -time.Millisecond}, wantField: "MaxRestartBackoff"},
		{name: "backoff above default max", cfg: gosched.Config{RestartBackoff: 2 * time.Second}, wantField: "MaxRestartBackoff"},
		{name: "max below backoff", cfg: gosched.Config{RestartBackoff: time.Second, MaxRestartBackoff: time.Millisecond}, wantField: "MaxRestartBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.cfg
			err := tt.cfg.Validate()
			require.Equal(t, before, tt.cfg, "Validate changed the config")

			rt, newErr := gosched.New(tt.cfg)
			require.Equal(t, before, tt.cfg, "New changed the config")
			if tt.wantField == "" {
				require.NoError(t, err)
				require.NoError(t, newErr)
				rt.Close()
				return
			}
			require.ErrorIs(t, err, gosched.ErrInvalidConfig)
			var cfgErr *gosched.ConfigError
			require.ErrorAs(t, err, &cfgErr)
			if cfgErr.Field != tt.wantField {
				t.Errorf("Field: got %q, want %q", cfgErr.Field, tt.wantField)
			}
			require.ErrorIs(t, newErr, gosched.ErrInvalidConfig)
			require.Nil(t, rt)
		})
	}
}

func TestSpawnErrors(t *testing.T) {
	rt, _ := newRuntime(t, gosched.Config{})
	_, err := rt.Spawn("a", func(any) {})
	require.NoError(t, err)

	_, err = rt.Spawn("a", func(any) {})
	require.ErrorIs(t, err, gosched.ErrDuplicateActor)

	_, err = rt.Spawn("b", nil)
	require.ErrorIs(t, err, gosched.ErrNilHandler)

	rt.Close()
	_, err = rt.Spawn("c", func(any) {})
	require.ErrorIs(t, err, gosched.ErrClosed)
}

// TestStopDiscardsQueued pins the documented choice: Stop discards queued
// messages and does not wait for a handler call in progress.
func TestStopDiscardsQueued(t *testing.T) {
	rt, _ := newRuntime(t, gosched.Config{})
	started, release := make(chan struct{}), make(chan struct{})
	var handled []any // written by the handler only, read after Done
	a, err := rt.SpawnActor("q", func(msg any) {
		handled = append(handled, msg)
		if msg == "first" {
			close(started)
			<-release
		}
	})
	require.NoError(t, err)
	require.NoError(t, a.Send("first"))
	waitClosed(t, started, "the handler to start")
	for i := range 4 {
		require.NoError(t, a.Send(i))
	}

	a.Stop() // returns although the handler is blocked
	require.False(t, isClosed(a.Done()), "Done closed while the handler was running")
	require.ErrorIs(t, a.Send("late"), dstate.ErrActorStopped)

	close(release)
	waitClosed(t, a.Done(), "the actor to exit")
	require.Equal(t, []any{"first"}, handled, "handled after Stop")
	require.Equal(t, uint64(1), rt.Stats().MessagesProcessed)
}

func TestStopOnPanic(t *testing.T) {
	logs := &logCapture{}
	rt, fc := newRuntime(t, gosched.Config{Supervision: gosched.StopOnPanic, Logger: slog.New(logs)})
	var handled []any // written by the handler only, read after Done
	gate := make(chan struct{})
	a, err := rt.SpawnActor("fragile", func(msg any) {
		switch msg {
		case "gate": // holds the actor until every message is queued
			<-gate
			return
		case "boom":
			panic("boom")
		}
		handled = append(handled, msg)
	})
	require.NoError(t, err)
	require.NoError(t, rt.JoinGroup("g", a))
	rt.SendInterval(a, time.Second, "tick")
	require.Equal(t, 1, fc.Pending())

	require.NoError(t, a.Send("gate"))
	require.NoError(t, a.Send("a"))
	require.NoError(t, a.Send("boom"))
	require.NoError(t, a.Send("b"))
	close(gate)
	waitClosed(t, a.Done(), "the actor to stop after its panic")

	require.Equal(t, []any{"a"}, handled, "handled after the panic")
	require.ErrorIs(t, a.Send("c"), dstate.ErrActorStopped)
	members, err := rt.GroupMembers("g")
	require.NoError(t, err)
	require.Empty(t, members, "a stopped actor stayed in its group")
	require.Zero(t, fc.Pending(), "the stopped actor's timer is still scheduled")

	st := rt.Stats()
	require.Equal(t, uint64(1), st.Panics)
	require.Zero(t, st.Restarts)
	require.Equal(t, uint64(2), st.MessagesProcessed, "the gate and a")

	recs := logs.errorsFor("fragile")
	require.Len(t, recs, 1, "error records naming the actor")
	require.Equal(t, "boom", recs[0].attrs["panic"])
	require.Contains(t, recs[0].attrs, "stack")

	_, err = rt.Spawn("fragile", func(any) {})
	require.NoError(t, err, "the name of an actor stopped by a panic is free again")
}

func TestRestartBackoff(t *testing.T) {
	logs := &logCapture{}
	rt, fc := newRuntime(t, gosched.Config{
		RestartBackoff:    10 * time.Millisecond,
		MaxRestartBackoff: 40 * time.Millisecond,
		Logger:            slog.New(logs),
	})
	handled := make(chan any, 16)
	a, err := rt.SpawnActor("fragile", func(msg any) {
		if msg == "boom" {
			panic(errors.New("boom"))
		}
		handled <- msg
	})
	require.NoError(t, err)

	// expectBackoff checks that the actor is paused for exactly d. The
	// restart is seen in Stats, not in the clock: once restarted, the actor
	// may already have panicked again and scheduled its next backoff.
	var restarts uint64
	expectBackoff := func(d time.Duration) {
		t.Helper()
		require.Eventually(t, func() bool { return fc.Pending() == 1 },
			waitFor, pollEvery, "no restart backoff scheduled")
		fc.Advance(d - time.Nanosecond)
		require.Equal(t, 1, fc.Pending(), "restarted before %v", d)
		fc.Advance(time.Nanosecond)
		restarts++
		require.Eventually(t, func() bool { return rt.Stats().Restarts == restarts },
			waitFor, pollEvery, "not restarted after %v", d)
	}
	expectHandled := func(want any) {
		t.Helper()
		select {
		case got := <-handled:
			require.Equal(t, want, got)
		case <-time.After(waitFor):
			t.Fatalf("timed out waiting for %v", want)
		}
	}

	for range 5 {
		require.NoError(t, a.Send("boom"))
	}
	require.NoError(t, a.Send("ok"))
	for _, d := range []time.Duration{10, 20, 40, 40, 40} {
		expectBackoff(d * time.Millisecond)
	}
	expectHandled("ok")

	// A message handled normally resets the backoff.
	require.NoError(t, a.Send("boom"))
	require.NoError(t, a.Send("ok again"))
	expectBackoff(10 * time.Millisecond)
	expectHandled("ok again")

	st := rt.Stats()
	require.Equal(t, uint64(6), st.Panics)
	require.Equal(t, uint64(6), st.Restarts)
	require.Equal(t, 6, len(logs.errorsFor("fragile")), "panic records naming the actor")
}

func TestStopDuringBackoff(t *testing.T) {
	rt, fc := newRuntime(t, gosched.Config{})
	a, err := rt.SpawnActor("fragile", func(any) { panic("always") })
	require.NoError(t, err)
	require.NoError(t, a.Send(1))
	require.Eventually(t, func() bool { return fc.Pending() == 1 },
		waitFor, pollEvery, "no restart backoff scheduled")
	a.Stop()
	waitClosed(t, a.Done(), "the actor to exit during its backoff")
	require.Zero(t, fc.Pending(), "the backoff timer outlived the actor")
	require.Zero(t, rt.Stats().Restarts)
}

func TestGoexitInHandlerStopsActor(t *testing.T) {
	rt, _ := newRuntime(t, gosched.Config{})
	a, err := rt.SpawnActor("quitter", func(any) { runtime.Goexit() })
	require.NoError(t, err)
	require.NoError(t, a.Send(1))
	waitClosed(t, a.Done(), "the actor to exit")
	require.ErrorIs(t, a.Send(2), dstate.ErrActorStopped)
}

func TestCloseWaitsForHandlers(t *testing.T) {
	rt, fc := newRuntime(t, gosched.Config{})
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	var actors []*gosched.Actor
	for i := range 3 {
		a, err := rt.SpawnActor(fmt.Sprint("actor", i), func(msg any) {
			if msg == "block" {
				close(started)
				<-release
				finished.Store(true)
			}
		})
		require.NoError(t, err)
		rt.SendInterval(a, time.Second, "tick")
		actors = append(actors, a)
	}
	require.NoError(t, actors[0].Send("block"))
	waitClosed(t, started, "the handler to block")

	closed := make(chan struct{})
	go func() {
		rt.Close()
		close(closed)
	}()
	// Once Close has stopped every actor it can only be waiting for the
	// blocked handler.
	require.Eventually(t, func() bool {
		for _, a := range actors {
			if !errors.Is(a.Send("x"), dstate.ErrActorStopped) {
				return false
			}
		}
		return true
	}, waitFor, pollEvery, "Close did not stop the actors")
	require.False(t, isClosed(closed), "Close returned while a handler was running")

	close(release)
	waitClosed(t, closed, "Close to return")
	require.True(t, finished.Load(), "Close returned before the handler did")
	for _, a := range actors {
		require.True(t, isClosed(a.Done()), "%s's goroutine still running after Close", a.Name())
	}
	require.Zero(t, fc.Pending(), "timers survived Close")

	rt.Close() // idempotent
	rt.SendAfter(actors[1], time.Second, "x").Cancel()
	require.Zero(t, fc.Pending(), "SendAfter after Close scheduled a timer")
}

func TestStats(t *testing.T) {
	rt, fc := newRuntime(t, gosched.Config{MailboxSize: 2})
	started, release := make(chan struct{}), make(chan struct{})
	a, err := rt.SpawnActor("counted", func(msg any) {
		if msg == "block" {
			close(started)
			<-release
		}
	})
	require.NoError(t, err)
	require.NoError(t, a.Send("block"))
	waitClosed(t, started, "the handler to block")
	require.NoError(t, a.Send(1))
	require.NoError(t, a.Send(2))
	require.ErrorIs(t, a.Send(3), dstate.ErrMailboxFull)

	rt.SendAfter(a, time.Second, "dropped")
	every := rt.SendInterval(a, time.Second, "dropped too")
	fc.Advance(2 * time.Second) // 1 + 2 ticks onto a full mailbox
	every.Cancel()

	close(release)
	require.Eventually(t, func() bool { return rt.Stats().MessagesProcessed == 3 },
		waitFor, pollEvery, "messages processed")
	a.Stop()
	require.ErrorIs(t, a.Send(4), dstate.ErrActorStopped)

	member := mustSpawn(t, rt, "member")
	require.NoError(t, rt.JoinGroup("g", member))
	gone := mustSpawn(t, rt, "gone")
	require.NoError(t, rt.JoinGroup("g", gone))
	gone.Stop()
	require.NoError(t, rt.BroadcastGroup("g", "hi"), "broadcast after the stopped member left")
	require.Eventually(t, func() bool { return rt.Stats().MessagesProcessed == 4 },
		waitFor, pollEvery, "messages processed")

	require.Equal(t, gosched.Stats{
		MessagesProcessed: 4,
		SendsRejected:     2,
		TimerTicksDropped: 3,
	}, rt.Stats())
}

func mustSpawn(t testing.TB, rt *gosched.Runtime, name string) *gosched.Actor {
	t.Helper()
	a, err := rt.SpawnActor(name, func(any) {})
	require.NoError(t, err)
	return a
}

func TestGroupErrors(t *testing.T) {
	rt, _ := newRuntime(t, gosched.Config{})
	other, _ := newRuntime(t, gosched.Config{})
	foreign := mustSpawn(t, other, "foreign")
	var groupErr *dstate.GroupError

	err := rt.JoinGroup("g", foreign)
	require.ErrorIs(t, err, gosched.ErrForeignActor)
	require.ErrorAs(t, err, &groupErr)
	require.Equal(t, "g", groupErr.Group)
	require.ErrorIs(t, rt.LeaveGroup("g", foreign), gosched.ErrForeignActor)
	require.ErrorIs(t, rt.JoinGroup("g", nil), gosched.ErrForeignActor)

	stopped := mustSpawn(t, rt, "stopped")
	stopped.Stop()
	err = rt.JoinGroup("g", stopped)
	require.ErrorIs(t, err, dstate.ErrActorStopped)
	require.ErrorAs(t, err, &groupErr)
	require.NoError(t, rt.LeaveGroup("g", stopped))

	members, err := rt.GroupMembers("g")
	require.NoError(t, err)
	require.Empty(t, members)
}

func TestGroupMembersSorted(t *testing.T) {
	rt, _ := newRuntime(t, gosched.Config{})
	for _, name := range []string{"c", "a", "b"} {
		require.NoError(t, rt.JoinGroup("g", mustSpawn(t, rt, name)))
	}
	members, err := rt.GroupMembers("g")
	require.NoError(t, err)
	var names []string
	for _, m := range members {
		names = append(names, m.Name())
	}
	require.Equal(t, []string{"a", "b", "c"}, names)
}

// refFunc is an ActorRef of no runtime: Send calls send.
type refFunc struct {
	name string
	send func(msg any) error
}

var _ dstate.ActorRef = refFunc{}

func (r refFunc) Name() string       { return r.name }
func (r refFunc) Send(msg any) error { return r.send(msg) }
func (r refFunc) Stop()              {}

func TestTimerForeignTarget(t *testing.T) {
	rt, fc := newRuntime(t, gosched.Config{})
	var got []any
	stopped := false
	ref := refFunc{name: "outside", send: func(msg any) error {
		if stopped {
			return &dstate.ActorSendError{Kind: dstate.ErrActorStopped, Actor: "outside"}
		}
		got = append(got, msg)
		return nil
	}}
	rt.SendInterval(ref, time.Second, "tick")
	fc.Advance(3 * time.Second)
	require.Equal(t, []any{"tick", "tick", "tick"}, got)

	// A target that reports itself stopped ends the interval.
	stopped = true
	fc.Advance(time.Second)
	require.Zero(t, fc.Pending(), "an interval outlived its stopped target")

	// Close cancels timers on foreign targets.
	stopped = false
	rt.SendAfter(ref, time.Second, "after")
	require.Equal(t, 1, fc.Pending())
	rt.Close()
	require.Zero(t, fc.Pending(), "Close left a foreign timer")
}

func TestTimerHousekeeping(t *testing.T) {
	rt, fc := newRuntime(t, gosched.Config{})
	a := mustSpawn(t, rt, "a")

	h := rt.SendAfter(a, time.Second, "x")
	require.Equal(t, 1, fc.Pending())
	h.Cancel()
	require.Zero(t, fc.Pending(), "Cancel left the timer scheduled")

	require.NotNil(t, rt.SendInterval(a, 0, "never"))
	require.NotNil(t, rt.SendInterval(a, -time.Second, "never"))
	require.Zero(t, fc.Pending(), "a non-positive interval scheduled a timer")

	rt.SendAfter(a, time.Second, "x")
	rt.SendInterval(a, time.Second, "y")
	require.Equal(t, 2, fc.Pending())
	a.Stop()
	require.Zero(t, fc.Pending(), "Stop left the actor's timers scheduled")
	rt.SendAfter(a, time.Second, "z").Cancel()
	require.Zero(t, fc.Pending(), "SendAfter to a stopped actor scheduled a timer")
}

func TestRealClock(t *testing.T) {
	rt, err := gosched.New(gosched.Config{Logger: discardLogger()})
	require.NoError(t, err)
	defer rt.Close()
	got := make(chan any, 16)
	a, err := rt.SpawnActor("real", func(msg any) {
		select {
		case got <- msg:
		default:
		}
	})
	require.NoError(t, err)
	receive := func(want any) {
		t.Helper()
		select {
		case msg := <-got:
			require.Equal(t, want, msg)
		case <-time.After(waitFor):
			t.Fatalf("timed out waiting for %v", want)
		}
	}

	rt.SendAfter(a, time.Millisecond, "after")
	receive("after")
	h := rt.SendInterval(a, time.Millisecond, "tick")
	for range 3 {
		receive("tick")
	}
	h.Cancel()
}
