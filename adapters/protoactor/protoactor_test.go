package protoactor_test

import (
	"cmp"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dstate-go/dstate/adapters/protoactor"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest/conformance"
	"github.com/dstate-go/dstate/pkg/node/nodetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestConformance(t *testing.T) {
	for _, opts := range []protoactor.Options{{}, {MailboxSize: 8}} {
		size := cmp.Or(opts.MailboxSize, protoactor.DefaultMailboxSize)
		t.Run(fmt.Sprintf("MailboxSize=%d", size), func(t *testing.T) {
			conformance.Runtime(t, func(t *testing.T) conformance.RuntimeUnderTest {
				rt, fc := newRuntime(t, opts)
				return conformance.RuntimeUnderTest{Runtime: rt, Advance: fc.Advance, Close: rt.Close, MailboxSize: size}
			})
		})
	}
}
func TestLoopbackConformance(t *testing.T) {
	nodetest.LoopbackConformance(t, func(t *testing.T) dstate.ActorRuntime {
		rt, err := protoactor.New(protoactor.Options{Logger: discardLogger()})
		require.NoError(t, err)
		t.Cleanup(rt.Close)
		return rt
	})
}

const (
	waitFor   = 10 * time.Second
	pollEvery = time.Millisecond
)

// newRuntime returns a runtime on a fresh TestClock, closed when t ends.
func newRuntime(t *testing.T, opts protoactor.Options) (*protoactor.Runtime, *dstatetest.TestClock) {
	t.Helper()
	fc := dstatetest.NewTestClockAtTime(epoch)
	opts.Clock, opts.Logger = fc, cmp.Or(opts.Logger, discardLogger())
	rt, err := protoactor.New(opts)
	require.NoError(t, err)
	t.Cleanup(rt.Close)
	return rt, fc
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitFor):
		t.Fatalf("timed out after %v waiting for %s", waitFor, what)
	}
}

// inbox is a handler that forwards every message to a channel.
type inbox chan any

func (in inbox) handle(msg any) {
	if s, ok := msg.(string); ok && s == "panic" {
		panic("boom")
	}
	in <- msg
}

func (in inbox) next(t *testing.T) any {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(waitFor):
		t.Fatalf("timed out after %v waiting for a message", waitFor)
		return nil
	}
}

// The fields Options shares with every actorkit runtime are checked by
// actorkit.Settings.Check and tested there; this is how the adapter
// reports them, and its own field.
func TestOptionsValidate(t *testing.T) {
	valid := []protoactor.Options{{}, protoactor.DefaultOptions(), {Throughput: 1, Supervision: protoactor.StopOnPanic}}
	for _, opts := range valid {
		opts.Logger = discardLogger()
		require.NoError(t, opts.Validate())
		rt, err := protoactor.New(opts)
		require.NoError(t, err)
		rt.Close()
	}

	invalid := []struct {
		opts  protoactor.Options
		field string
	}{
		{protoactor.Options{Throughput: -1}, "Throughput"},
		{protoactor.Options{MailboxSize: -1, Throughput: -1}, "MailboxSize"},
		{protoactor.Options{Supervision: 7}, "Supervision"},
		{protoactor.Options{RestartBackoff: time.Second, MaxRestartBackoff: time.Millisecond, Throughput: -1}, "Throughput"},
		{protoactor.Options{RestartBackoff: 2 * time.Second}, "MaxRestartBackoff"},
	}
	for _, tt := range invalid {
		before := tt.opts
		err := tt.opts.Validate()
		rt, newErr := protoactor.New(tt.opts)
		require.Equal(t, before, tt.opts, "Validate or New changed the options")
		require.Nil(t, rt)
		for _, err := range []error{err, newErr} {
			require.ErrorIs(t, err, protoactor.ErrInvalidOptions)
			var optErr *protoactor.OptionsError
			require.ErrorAs(t, err, &optErr)
			require.Equal(t, tt.field, optErr.Field)
		}
	}
	require.EqualError(t, protoactor.Options{Throughput: -1}.Validate(),
		"protoactor: invalid options: Throughput = -1: must not be negative")
}

// The bookkeeping behind these errors is actorkit's and tested there;
// this is that the adapter reports its own sentinels through it.
func TestSentinelErrors(t *testing.T) {
	rt, _ := newRuntime(t, protoactor.Options{})
	other, _ := newRuntime(t, protoactor.Options{})
	elsewhere, err := other.Spawn("elsewhere", func(any) {})
	require.NoError(t, err)
	spawn := func(name string, handler func(any)) error {
		_, err := rt.Spawn(name, handler)
		return err
	}
	require.NoError(t, spawn("a", func(any) {}))
	stopped, err := rt.SpawnActor("stopped", func(any) {})
	require.NoError(t, err)
	stopped.Stop()

	for _, c := range []struct {
		what      string
		err, want error
	}{
		{"a duplicate name", spawn("a", func(any) {}), protoactor.ErrDuplicateActor},
		{"a nil handler", spawn("b", nil), protoactor.ErrNilHandler},
		{"joining a foreign actor", rt.JoinGroup("g", elsewhere), protoactor.ErrForeignActor},
		{"a foreign actor leaving", rt.LeaveGroup("g", elsewhere), protoactor.ErrForeignActor},
		{"joining a stopped actor", rt.JoinGroup("g", stopped), dstate.ErrActorStopped},
	} {
		require.ErrorIs(t, c.err, c.want, c.what)
		if strings.Contains(c.what, "join") || strings.Contains(c.what, "leav") {
			var groupErr *dstate.GroupError
			require.ErrorAs(t, c.err, &groupErr, c.what)
			require.Equal(t, "g", groupErr.Group, c.what)
		}
	}

	rt.Close()
	require.ErrorIs(t, spawn("c", func(any) {}), protoactor.ErrClosed)
	rt.Close() // idempotent
}

// A timer may target an actor of another runtime: it delivers through that
// actor's Send, and Close cancels it.
func TestTimerToForeignActor(t *testing.T) {
	rt, fc := newRuntime(t, protoactor.Options{})
	other, _ := newRuntime(t, protoactor.Options{})
	in := make(inbox, 8)
	ref, err := other.Spawn("elsewhere", in.handle)
	require.NoError(t, err)
	rt.SendInterval(ref, time.Second, "tick")
	fc.Advance(time.Second)
	require.Equal(t, "tick", in.next(t))
	rt.Close()
	require.Zero(t, fc.Pending(), "Close left a foreign timer scheduled")
}

func TestRestartBackoffDoubles(t *testing.T) {
	const backoff = 100 * time.Millisecond
	rt, fc := newRuntime(t, protoactor.Options{RestartBackoff: backoff, MaxRestartBackoff: 250 * time.Millisecond})
	in := make(inbox, 8)
	ref, err := rt.Spawn("fragile", in.handle)
	require.NoError(t, err)

	// Each consecutive panic doubles the delay, up to the maximum.
	for i, want := range []time.Duration{backoff, 2 * backoff, 250 * time.Millisecond} {
		require.NoError(t, ref.Send("panic"))
		require.Eventually(t, func() bool { return fc.Pending() == 1 }, waitFor, pollEvery,
			"panic %d: the restart was not scheduled", i+1)
		fc.Advance(want - time.Nanosecond)
		require.Equal(t, uint64(i), rt.Stats().Restarts, "panic %d: restarted before %v", i+1, want)
		fc.Advance(time.Nanosecond)
		require.Equal(t, uint64(i+1), rt.Stats().Restarts, "panic %d: not restarted after %v", i+1, want)
	}
	require.NoError(t, ref.Send("after"))
	require.Equal(t, "after", in.next(t))

	// A message handled normally resets the backoff.
	require.NoError(t, ref.Send("panic"))
	require.Eventually(t, func() bool { return fc.Pending() == 1 }, waitFor, pollEvery, "the restart was not scheduled")
	fc.Advance(backoff)
	require.Equal(t, uint64(4), rt.Stats().Restarts, "not restarted after the first backoff again")
	require.NoError(t, ref.Send("again"))
	require.Equal(t, "again", in.next(t))
	require.Equal(t, uint64(4), rt.Stats().Panics)
	// The handler returns after handing its message over.
	require.Eventually(t, func() bool { return rt.Stats().MessagesProcessed == 2 }, waitFor, pollEvery,
		"messages processed")
}

func TestStopOnPanic(t *testing.T) {
	rt, fc := newRuntime(t, protoactor.Options{Supervision: protoactor.StopOnPanic})
	in := make(inbox, 8)
	ref, err := rt.SpawnActor("fragile", in.handle)
	require.NoError(t, err)
	require.NoError(t, rt.JoinGroup("g", ref))
	rt.SendInterval(ref, time.Second, "tick")
	require.NoError(t, ref.Send("panic"))
	waitClosed(t, ref.Done(), "the actor to stop after its panic")
	require.ErrorIs(t, ref.Send("late"), dstate.ErrActorStopped)
	members, err := rt.GroupMembers("g")
	require.NoError(t, err)
	require.Empty(t, members, "a stopped actor stayed in its group")
	require.Zero(t, fc.Pending(), "a stopped actor's timer is still scheduled")
	require.Equal(t, uint64(1), rt.Stats().Panics)
	require.Zero(t, rt.Stats().Restarts)
}

// Stopping an actor while its restart backoff runs cancels the restart.
func TestStopDuringBackoff(t *testing.T) {
	rt, fc := newRuntime(t, protoactor.Options{})
	in := make(inbox, 8)
	ref, err := rt.SpawnActor("fragile", in.handle)
	require.NoError(t, err)
	require.NoError(t, ref.Send("panic"))
	require.Eventually(t, func() bool { return fc.Pending() == 1 }, waitFor, pollEvery, "the restart was not scheduled")
	ref.Stop()
	waitClosed(t, ref.Done(), "the actor to stop")
	require.Zero(t, fc.Pending(), "Stop left the restart scheduled")
	fc.Advance(time.Minute)
	require.Zero(t, rt.Stats().Restarts)
}

// With a system of the application's, the actors are ordinary proto.actor
// actors of it: their PIDs are registered there, proto.actor code may send
// to them and stop them, and Close leaves the system running.
func TestSharedSystem(t *testing.T) {
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return discardLogger() }))
	rt, err := protoactor.New(protoactor.Options{System: system, Logger: discardLogger()})
	require.NoError(t, err)
	t.Cleanup(rt.Close)
	require.Same(t, system, rt.System())

	in := make(inbox, 8)
	ref, err := rt.SpawnActor("shared", in.handle)
	require.NoError(t, err)
	require.Regexp(t, `^shared\$`, ref.PID().Id)
	_, registered := system.ProcessRegistry.Get(ref.PID())
	require.True(t, registered, "the PID is not in the system's registry")

	system.Root.Send(ref.PID(), "from proto.actor")
	require.Equal(t, "from proto.actor", in.next(t))
	require.NoError(t, ref.Send("from dstate"))
	require.Equal(t, "from dstate", in.next(t))

	// A stop by proto.actor code is seen by the runtime.
	require.NoError(t, system.Root.StopFuture(ref.PID()).Wait())
	waitClosed(t, ref.Done(), "the actor to stop")
	require.ErrorIs(t, ref.Send("late"), dstate.ErrActorStopped)
	again, err := rt.Spawn("shared", in.handle)
	require.NoError(t, err, "the name is free once the actor stopped")

	rt.Close()
	require.False(t, system.IsStopped(), "Close shut down a system it did not create")
	require.ErrorIs(t, again.Send("x"), dstate.ErrActorStopped)
}

// batch is a proto.actor MessageBatch.
type batch []any

func (b batch) GetMessages() []any { return b }

var _ actor.MessageBatch = batch(nil)

// proto.actor's own message types, nil and batches pass through Send as
// plain messages.
func TestSendPassesProtoActorTypesThrough(t *testing.T) {
	rt, _ := newRuntime(t, protoactor.Options{})
	in := make(inbox, 8)
	ref, err := rt.Spawn("opaque", in.handle)
	require.NoError(t, err)
	for _, msg := range []any{nil, &actor.PoisonPill{}, &actor.Stop{}, &actor.Started{}, batch{"a", "b"}} {
		require.NoError(t, ref.Send(msg))
		require.Equal(t, msg, in.next(t))
	}
	require.NoError(t, ref.Send("still running"))
	require.Equal(t, "still running", in.next(t))
}
