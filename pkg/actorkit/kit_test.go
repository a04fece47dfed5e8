package actorkit_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dstate-go/dstate/pkg/actorkit"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	epoch      = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	errForeign = errors.New("test: foreign actor")
	errClosed  = errors.New("test: closed")
	errDup     = errors.New("test: duplicate")
)

// box is a test actor: a bounded inbox that records what it is given.
type box struct {
	rt    *testRuntime
	name  string
	limit int

	mu      sync.Mutex
	got     []any
	sends   int // calls of Send, as opposed to deliver
	stopped bool
}

var _ dstate.ActorRef = (*box)(nil)

func (b *box) Name() string { return b.name }

func (b *box) Send(msg any) error {
	b.mu.Lock()
	b.sends++
	b.mu.Unlock()
	return b.deliver(msg)
}

func (b *box) Stop() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	b.rt.groups.LeaveAll(b)
	b.rt.timers.CancelAll(b)
}

func (b *box) stopping() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopped
}

func (b *box) deliver(msg any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.stopped:
		return &dstate.ActorSendError{Kind: dstate.ErrActorStopped, Actor: b.name}
	case len(b.got) >= b.limit:
		return &dstate.ActorSendError{Kind: dstate.ErrMailboxFull, Actor: b.name}
	}
	b.got = append(b.got, msg)
	return nil
}

// take returns and forgets what b got, and how many times Send was called.
func (b *box) take() ([]any, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	got, sends := b.got, b.sends
	b.got, b.sends = nil, 0
	return got, sends
}

// testRuntime wires the kit to boxes, as a runtime does to its actors.
type testRuntime struct {
	clock  *dstatetest.TestClock
	names  *actorkit.Names[*box]
	groups *actorkit.Groups[*box]
	timers *actorkit.Timers[*box]
}

func newTestRuntime(t *testing.T) *testRuntime {
	t.Helper()
	rt := &testRuntime{clock: dstatetest.NewTestClockAtTime(epoch)}
	bind := actorkit.Binding[*box]{
		Belongs:    func(b *box) bool { return b.rt == rt },
		Stopping:   (*box).stopping,
		Deliver:    (*box).deliver,
		ErrForeign: errForeign,
	}
	rt.names = actorkit.NewNames[*box](errClosed, errDup)
	rt.groups = actorkit.NewGroups(bind)
	rt.timers = actorkit.NewTimers(rt.clock, bind)
	t.Cleanup(rt.timers.Close)
	return rt
}

func (rt *testRuntime) spawn(t *testing.T, name string, limit int) *box {
	t.Helper()
	b, err := rt.names.Add(name, func() (*box, error) { return &box{rt: rt, name: name, limit: limit}, nil })
	require.NoError(t, err)
	return b
}

func TestNames(t *testing.T) {
	rt := newTestRuntime(t)
	a := rt.spawn(t, "a", 1)

	_, err := rt.names.Add("a", func() (*box, error) { panic("start called for a taken name") })
	require.ErrorIs(t, err, errDup)
	require.ErrorContains(t, err, `"a"`)

	failed := errors.New("start failed")
	_, err = rt.names.Add("b", func() (*box, error) { return nil, failed })
	require.ErrorIs(t, err, failed)
	rt.spawn(t, "b", 1) // a failed start does not take the name

	rt.names.Remove(a)
	a2 := rt.spawn(t, "a", 1)
	rt.names.Remove(a) // stale: a2 keeps the name
	_, err = rt.names.Add("a", func() (*box, error) { return &box{}, nil })
	require.ErrorIs(t, err, errDup)

	running := rt.names.Close()
	require.ElementsMatch(t, []string{"a", "b"}, names(running))
	require.Contains(t, running, a2)
	_, err = rt.names.Add("c", func() (*box, error) { panic("start called after Close") })
	require.ErrorIs(t, err, errClosed)
	require.ErrorContains(t, err, `spawn "c"`)
}

func names[A actorkit.Actor](actors []A) []string {
	out := make([]string, len(actors))
	for i, a := range actors {
		out[i] = a.Name()
	}
	return out
}

func TestGroups(t *testing.T) {
	rt := newTestRuntime(t)
	c, a, b := rt.spawn(t, "c", 1), rt.spawn(t, "a", 1), rt.spawn(t, "b", 0)
	for _, m := range []*box{c, a, b, a} { // joining twice is a no-op
		require.NoError(t, rt.groups.Join("g", m))
	}
	require.NoError(t, rt.groups.Join("h", a))
	require.Equal(t, []string{"a", "b", "c"}, names(rt.groups.Members("g")))
	require.Equal(t, []string{"a", "b", "c"}, names(rt.groups.Refs("g")))
	require.Empty(t, rt.groups.Members("unknown"))

	// b's mailbox holds nothing: the others still get the message, and
	// the error names b.
	err := rt.groups.Broadcast("g", "hi")
	var groupErr *dstate.GroupError
	require.ErrorAs(t, err, &groupErr)
	require.Equal(t, "g", groupErr.Group)
	var sendErr *dstate.ActorSendError
	require.ErrorAs(t, err, &sendErr)
	require.Equal(t, "b", sendErr.Actor)
	require.ErrorIs(t, err, dstate.ErrMailboxFull)
	for _, m := range []*box{a, c} {
		got, sends := m.take()
		require.Equal(t, []any{"hi"}, got, m.name)
		require.Equal(t, 1, sends, "Broadcast goes through Send")
	}
	require.NoError(t, rt.groups.Broadcast("empty", "hi"))

	// Broadcast joins the errors of every member that could not take msg.
	require.NoError(t, a.deliver("fill"))
	err = rt.groups.Broadcast("g", "x")
	var joined interface{ Unwrap() []error }
	require.ErrorAs(t, err, &joined)
	require.Len(t, joined.Unwrap(), 2)

	// A member that leaves or stops is no longer broadcast to.
	require.NoError(t, rt.groups.Leave("g", b))
	require.NoError(t, rt.groups.Leave("g", b)) // idempotent
	require.NoError(t, rt.groups.Leave("nothing", b))
	a.Stop()
	require.Equal(t, []string{"c"}, names(rt.groups.Members("g")))
	require.Empty(t, rt.groups.Members("h"), "a stopped actor stayed in its other group")
	require.NoError(t, rt.groups.Leave("g", a), "leaving after stopping")
	c.Stop()
	require.Empty(t, rt.groups.Members("g"))
}

func TestGroupsRefuse(t *testing.T) {
	rt := newTestRuntime(t)
	other := newTestRuntime(t)
	foreign := other.spawn(t, "foreign", 1)
	for _, err := range []error{
		rt.groups.Join("g", foreign), rt.groups.Leave("g", foreign),
		rt.groups.Join("g", nil), rt.groups.Join("g", (*box)(nil)),
	} {
		require.ErrorIs(t, err, errForeign)
		var groupErr *dstate.GroupError
		require.ErrorAs(t, err, &groupErr)
		require.Equal(t, "g", groupErr.Group)
	}

	stopped := rt.spawn(t, "stopped", 1)
	stopped.Stop()
	err := rt.groups.Join("g", stopped)
	require.ErrorIs(t, err, dstate.ErrActorStopped)
	var sendErr *dstate.ActorSendError
	require.ErrorAs(t, err, &sendErr)
	require.Equal(t, "stopped", sendErr.Actor)
	require.Empty(t, rt.groups.Members("g"))
}

func TestTimersSendAfter(t *testing.T) {
	rt := newTestRuntime(t)
	a := rt.spawn(t, "a", 8)
	rt.timers.SendAfter(a, time.Second, "once")
	rt.clock.Advance(time.Second - time.Nanosecond)
	got, _ := a.take()
	require.Empty(t, got, "delivered early")
	rt.clock.Advance(time.Nanosecond)
	got, sends := a.take()
	require.Equal(t, []any{"once"}, got)
	require.Zero(t, sends, "a tick to an own actor goes through Deliver, not Send")
	rt.clock.Advance(time.Hour)
	require.Zero(t, rt.clock.Pending())

	h := rt.timers.SendAfter(a, time.Second, "cancelled")
	h.Cancel()
	h.Cancel() // idempotent
	require.Zero(t, rt.clock.Pending(), "Cancel left the timer scheduled")

	// Nothing starts for a nil target or a non-positive interval.
	for _, h := range []dstate.TimerHandle{
		rt.timers.SendAfter(nil, time.Second, "x"),
		rt.timers.SendInterval(a, 0, "x"),
		rt.timers.SendInterval(a, -time.Second, "x"),
	} {
		require.Equal(t, actorkit.NopTimer{}, h)
		h.Cancel()
	}
	require.Zero(t, rt.clock.Pending())
}

func TestTimersDropAndStop(t *testing.T) {
	rt := newTestRuntime(t)
	a := rt.spawn(t, "a", 1)
	every := rt.timers.SendInterval(a, time.Second, "tick")
	rt.clock.Advance(3 * time.Second) // one tick fits, two are dropped
	got, _ := a.take()
	require.Equal(t, []any{"tick"}, got)
	require.Equal(t, uint64(2), rt.timers.Dropped())
	rt.clock.Advance(time.Second)
	got, _ = a.take()
	require.Equal(t, []any{"tick"}, got, "a dropped tick does not end the interval")
	every.Cancel()

	// Stopping the target cancels its timers; none starts for it after.
	rt.timers.SendAfter(a, time.Second, "x")
	rt.timers.SendInterval(a, time.Second, "y")
	require.Equal(t, 2, rt.clock.Pending())
	a.Stop()
	require.Zero(t, rt.clock.Pending(), "CancelAll left a timer scheduled")
	require.Equal(t, actorkit.NopTimer{}, rt.timers.SendAfter(a, time.Second, "z"))
}

// foreignRef is an ActorRef of no runtime.
type foreignRef struct {
	mu      sync.Mutex
	got     []any
	stopped bool
	err     error // returned by Send when set
}

func (f *foreignRef) Name() string { return "foreign" }
func (f *foreignRef) Stop()        {}
func (f *foreignRef) Send(msg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return &dstate.ActorSendError{Kind: dstate.ErrActorStopped, Actor: "foreign"}
	}
	if f.err != nil {
		return f.err
	}
	f.got = append(f.got, msg)
	return nil
}

func TestTimersForeignTarget(t *testing.T) {
	rt := newTestRuntime(t)
	ref := &foreignRef{}
	rt.timers.SendInterval(ref, time.Second, "tick")
	rt.clock.Advance(2 * time.Second)
	require.Equal(t, []any{"tick", "tick"}, ref.got)

	ref.err = errors.New("another runtime's failure")
	rt.clock.Advance(time.Second)
	require.Equal(t, uint64(1), rt.timers.Dropped(), "a failed tick is dropped")
	require.Equal(t, 1, rt.clock.Pending())

	// A target that reports itself stopped ends the interval.
	ref.stopped = true
	rt.clock.Advance(time.Second)
	require.Zero(t, rt.clock.Pending(), "an interval outlived its stopped target")

	// Close cancels every timer, and nothing starts after it.
	ref.stopped = false
	a := rt.spawn(t, "a", 8)
	rt.timers.SendAfter(ref, time.Second, "after")
	rt.timers.SendInterval(a, time.Second, "tick")
	require.Equal(t, 2, rt.clock.Pending())
	rt.timers.Close()
	require.Zero(t, rt.clock.Pending(), "Close left a timer scheduled")
	require.Equal(t, actorkit.NopTimer{}, rt.timers.SendAfter(ref, time.Second, "x"))
	rt.timers.Close() // idempotent
}

// lateClock is a Clock whose scheduled functions run only when the test
// calls fire, at whatever time it set: a clock that runs late.
type lateClock struct {
	mu    sync.Mutex
	now   time.Time
	due   []time.Duration // delays asked for, in order
	funcs []func()
}

func (c *lateClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *lateClock) UnixMilli() int64 { return c.Now().UnixMilli() }

func (c *lateClock) AfterFunc(d time.Duration, f func()) dstate.Stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.due = append(c.due, d)
	c.funcs = append(c.funcs, f)
	return stopper{}
}

type stopper struct{}

func (stopper) Stop() bool { return true }

// fire sets the time to at and runs the latest scheduled function.
func (c *lateClock) fire(at time.Time) {
	c.mu.Lock()
	c.now = at
	f := c.funcs[len(c.funcs)-1]
	c.mu.Unlock()
	f()
}

func TestTimersFixedTicksSkipMissed(t *testing.T) {
	clock := &lateClock{now: epoch}
	ref := &foreignRef{}
	timers := actorkit.NewTimers(clock, actorkit.Binding[*box]{
		Belongs:  func(*box) bool { return false },
		Stopping: (*box).stopping,
		Deliver:  (*box).deliver,
	})
	defer timers.Close()
	timers.SendInterval(ref, 10*time.Second, "tick")

	// Late by 3s: the next tick is still due at 20s.
	clock.fire(epoch.Add(13 * time.Second))
	// Late by 15s, past the tick due at 30s: it is skipped and the next is
	// due at 40s.
	clock.fire(epoch.Add(35 * time.Second))
	// Exactly on time.
	clock.fire(epoch.Add(40 * time.Second))
	require.Equal(t, []time.Duration{10 * time.Second, 7 * time.Second, 5 * time.Second, 10 * time.Second}, clock.due)
	require.Len(t, ref.got, 3, "missed ticks were delivered")
}

func TestSettings(t *testing.T) {
	tests := []struct {
		name      string
		s         actorkit.Settings
		extra     *actorkit.Violation
		wantField string // "" means valid
	}{
		{name: "zero value"},
		{name: "defaults", s: actorkit.DefaultSettings()},
		{name: "stop on panic", s: actorkit.Settings{Supervision: actorkit.StopOnPanic}},
		{name: "equal backoffs", s: actorkit.Settings{RestartBackoff: time.Second, MaxRestartBackoff: time.Second}},
		{name: "negative mailbox", s: actorkit.Settings{MailboxSize: -1}, wantField: "MailboxSize"},
		{name: "unknown supervision", s: actorkit.Settings{Supervision: 7}, wantField: "Supervision"},
		{name: "negative backoff", s: actorkit.Settings{RestartBackoff: -1}, wantField: "RestartBackoff"},
		{name: "negative max backoff", s: actorkit.Settings{MaxRestartBackoff: -1}, wantField: "MaxRestartBackoff"},
		{name: "backoff above default max", s: actorkit.Settings{RestartBackoff: 2 * time.Second}, wantField: "MaxRestartBackoff"},
		{name: "extra", extra: &actorkit.Violation{Field: "Extra"}, wantField: "Extra"},
		{name: "extra before the backoff order",
			s:     actorkit.Settings{RestartBackoff: time.Second, MaxRestartBackoff: time.Millisecond},
			extra: &actorkit.Violation{Field: "Extra"}, wantField: "Extra"},
		{name: "shared fields before extra", s: actorkit.Settings{MailboxSize: -1},
			extra: &actorkit.Violation{Field: "Extra"}, wantField: "MailboxSize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.s.Check(nil, tt.extra)
			if tt.wantField == "" {
				require.Nil(t, v)
				return
			}
			require.NotNil(t, v)
			require.Equal(t, tt.wantField, v.Field)
		})
	}
	v := actorkit.Settings{RestartBackoff: 2 * time.Second}.Check()
	require.Equal(t, &actorkit.Violation{Field: "MaxRestartBackoff", Value: time.Second,
		Reason: "must not be below RestartBackoff (2s)"}, v)

	d := actorkit.Settings{}.WithDefaults()
	require.Equal(t, actorkit.DefaultMailboxSize, d.MailboxSize)
	require.Equal(t, dstate.SystemClock{}, d.Clock)
	require.NotNil(t, d.Logger)
	custom := actorkit.Settings{MailboxSize: 3, Clock: dstatetest.NewTestClockAtTime(epoch)}
	require.Equal(t, 3, custom.WithDefaults().MailboxSize)
	require.Same(t, custom.Clock, custom.WithDefaults().Clock)
}

func TestBackoff(t *testing.T) {
	s := actorkit.Settings{RestartBackoff: 100 * time.Millisecond, MaxRestartBackoff: 250 * time.Millisecond}
	var got []time.Duration
	for n := 1; n <= 4; n++ {
		got = append(got, s.Backoff(n))
	}
	require.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond, 250 * time.Millisecond}, got)
}

func TestSupervisionString(t *testing.T) {
	for s, want := range map[actorkit.Supervision]string{
		actorkit.RestartOnPanic: "RestartOnPanic",
		actorkit.StopOnPanic:    "StopOnPanic",
		9:                       "Supervision(9)",
	} {
		require.Equal(t, want, s.String())
	}
}

func TestCountersAndRef(t *testing.T) {
	var c actorkit.Counters
	require.NoError(t, c.CountSend(nil))
	full := &dstate.ActorSendError{Kind: dstate.ErrMailboxFull, Actor: "a"}
	require.Same(t, full, c.CountSend(full))
	c.Panics.Add(1)
	c.Processed.Add(2)
	require.Equal(t, actorkit.Stats{Panics: 1, MessagesProcessed: 2, SendsRejected: 1, TimerTicksDropped: 5}, c.Stats(5))

	ref, err := actorkit.Ref((*box)(nil), errClosed)
	require.Nil(t, ref, "Ref returned a non-nil interface")
	require.ErrorIs(t, err, errClosed)
	b := &box{name: "b"}
	ref, err = actorkit.Ref(b, nil)
	require.NoError(t, err)
	require.Same(t, b, ref)
}

func TestCore(t *testing.T) {
	clock := dstatetest.NewTestClockAtTime(epoch)
	var kit *actorkit.Core[*box]
	rt := &testRuntime{clock: clock}
	kit = actorkit.NewCore(clock, actorkit.Binding[*box]{
		Belongs:    func(b *box) bool { return b.rt == rt },
		Stopping:   (*box).stopping,
		Deliver:    (*box).deliver,
		ErrForeign: errForeign,
	}, errClosed, errDup)
	rt.names, rt.groups, rt.timers = kit.Names, kit.Groups, kit.Timers
	a, b := rt.spawn(t, "a", 1), rt.spawn(t, "b", 1)
	for _, m := range []*box{a, b} {
		require.NoError(t, kit.Groups.Join("g", m))
		kit.Timers.SendInterval(m, time.Second, "tick")
	}
	kit.Counters.Processed.Add(1)
	clock.Advance(2 * time.Second) // the second tick of each is dropped
	require.Equal(t, actorkit.Stats{MessagesProcessed: 1, TimerTicksDropped: 2}, kit.Stats())

	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	kit.Forget(a)
	require.Equal(t, []string{"b"}, names(kit.Groups.Members("g")))
	require.Equal(t, 1, clock.Pending(), "Forget left a's timer")
	rt.spawn(t, "a", 1) // the name is free again

	kit.Close()
	require.Zero(t, clock.Pending(), "Close left a timer")
	for _, m := range []*box{b, a} {
		require.True(t, m.stopping(), "Close did not stop %s", m.name)
	}
	_, err := kit.Names.Add("c", nil)
	require.ErrorIs(t, err, errClosed)
}
