package node_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
)

// watcher ranges over a watch on a goroutine and hands its changes over a
// channel (unbuffered unless told otherwise).
type watcher struct {
	ch     chan node.Change[dstatetest.Counter]
	errc   chan error
	cancel context.CancelFunc
	done   chan struct{}
}

func startWatch(t *testing.T, s *counterShard, opts node.WatchOptions, buffer int) *watcher {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{ch: make(chan node.Change[dstatetest.Counter], buffer), errc: make(chan error, 1), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for c, err := range s.Watch(wctx, opts) {
			if err != nil {
				w.errc <- err
				return
			}
			select {
			case w.ch <- c:
			case <-wctx.Done():
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// next returns the next change, failing the test after 10 s.
func (w *watcher) next(t *testing.T) node.Change[dstatetest.Counter] {
	t.Helper()
	select {
	case c := <-w.ch:
		return c
	case err := <-w.errc:
		t.Fatalf("the watch ended: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no change within 10 s")
	}
	return node.Change[dstatetest.Counter]{}
}

// until returns the first change for which ok holds, skipping others.
func (w *watcher) until(t *testing.T, what string, ok func(node.Change[dstatetest.Counter]) bool) node.Change[dstatetest.Counter] {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case c := <-w.ch:
			if ok(c) {
				return c
			}
		case err := <-w.errc:
			t.Fatalf("the watch ended before %s: %v", what, err)
		case <-deadline:
			t.Fatalf("no %s within 10 s", what)
		}
	}
}

func TestWatchListsThenReportsChanges(t *testing.T) {
	c := threeNodes(t)
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	eventually(t, "n1 holds every view", func() bool { return holdsAll(shards["n1"], 3) })

	w := startWatch(t, shards["n1"], node.WatchOptions{}, 0)
	var initial []dstate.NodeID
	for range 3 {
		ch := w.next(t)
		require.True(t, ch.Initial, "%+v", ch)
		require.Equal(t, node.ViewUpdated, ch.Kind)
		initial = append(initial, ch.Node)
	}
	require.Equal(t, []dstate.NodeID{"n0", "n1", "n2"}, initial, "the initial list, in node order")

	gen, _, err := shards["n0"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 5 })
	require.NoError(t, err)
	ch := w.until(t, "n0's new view", func(ch node.Change[dstatetest.Counter]) bool { return ch.Node == "n0" })
	require.Equal(t, node.ViewUpdated, ch.Kind)
	require.Equal(t, gen, ch.Generation)
	require.Equal(t, int64(5), ch.View.Value.Count)
	require.False(t, ch.Initial)
	require.False(t, ch.Skipped, "one mutation, one generation")

	// A local mutation is reported too.
	gen, _, err = shards["n1"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 9 })
	require.NoError(t, err)
	ch = w.until(t, "n1's own view", func(ch node.Change[dstatetest.Counter]) bool { return ch.Node == "n1" })
	require.Equal(t, gen, ch.Generation)

	// A failed node, then a departed one.
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeFailed, Node: "n2"})
	ch = w.until(t, "n2 failed", func(ch node.Change[dstatetest.Counter]) bool { return ch.Node == "n2" })
	require.Equal(t, node.PeerFailed, ch.Kind)
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeLeft, Node: "n2"})
	ch = w.until(t, "n2 removed", func(ch node.Change[dstatetest.Counter]) bool { return ch.Node == "n2" })
	require.Equal(t, node.ViewRemoved, ch.Kind)
	require.Equal(t, "removed", ch.Kind.String())
}

func TestWatchFiltersAndResumes(t *testing.T) {
	c := threeNodes(t)
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	eventually(t, "n1 holds every view", func() bool { return holdsAll(shards["n1"], 3) })
	for range 3 {
		_, _, err := shards["n0"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count++ })
		require.NoError(t, err)
	}
	_, g0, _ := counterOf(shards["n0"], "n0")
	eventually(t, "n1 holds n0's third generation", func() bool { _, g, ok := counterOf(shards["n1"], "n0"); return ok && g == g0 })

	// Resuming from n0's current generation: nothing to report for n0
	// until it changes; the filter hides n2 and n1.
	w := startWatch(t, shards["n1"], node.WatchOptions{Nodes: []dstate.NodeID{"n0"}, Resume: map[dstate.NodeID]dstate.Generation{"n0": g0}}, 0)
	_, _, err := shards["n2"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 1 })
	require.NoError(t, err)
	gen, _, err := shards["n0"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 100 })
	require.NoError(t, err)
	ch := w.next(t)
	require.Equal(t, dstate.NodeID("n0"), ch.Node, "the filter lets only n0 through")
	require.Equal(t, gen, ch.Generation)
	require.Equal(t, g0, ch.OldGeneration)
	require.False(t, ch.Initial)
	require.False(t, ch.Skipped)

	// Resuming from an older generation reports the newest, skipping.
	w2 := startWatch(t, shards["n1"], node.WatchOptions{Nodes: []dstate.NodeID{"n0"}, Resume: map[dstate.NodeID]dstate.Generation{"n0": {Incarnation: g0.Incarnation, Age: 1}}}, 0)
	eventually(t, "n1 holds n0's newest", func() bool { _, g, _ := counterOf(shards["n1"], "n0"); return g == gen })
	ch = w2.until(t, "n0's newest view", func(ch node.Change[dstatetest.Counter]) bool { return ch.Generation == gen })
	require.True(t, ch.Skipped, "generations 2 and 3 were not delivered")
}

func TestWatchEveryGenerationDeliversEachInOrder(t *testing.T) {
	c := newTestCluster(t)
	c.Start("n0")
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	w := startWatch(t, shards["n0"], node.WatchOptions{EveryGeneration: true}, 0)
	first := w.next(t)
	require.True(t, first.Initial)
	const n = 50
	for range n {
		_, _, err := shards["n0"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count++ })
		require.NoError(t, err)
	}
	prev := first.Generation
	for range n {
		ch := w.next(t)
		require.Equal(t, prev.Age+1, ch.Generation.Age, "every generation, in order")
		require.False(t, ch.Skipped)
		prev = ch.Generation
	}
}

// TestSlowWatcherSlowsNothing: a watcher that stops reading while 20,000
// mutations replicate does not hold up the writer, the replication or a
// second watcher; when it reads again it gets the latest view of each node
// with Skipped set, and its memory stayed bounded (the shard keeps a fixed
// number of changes).
func TestSlowWatcherSlowsNothing(t *testing.T) {
	c := threeNodes(t)
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	c.JoinAll()
	eventually(t, "n1 holds every view", func() bool { return holdsAll(shards["n1"], 3) })

	stuck := startWatch(t, shards["n1"], node.WatchOptions{EveryGeneration: true}, 0)
	stuck.next(t) // the first initial view; then it stops reading
	live := startWatch(t, shards["n1"], node.WatchOptions{Nodes: []dstate.NodeID{"n0"}}, 0)
	live.next(t)

	var heapBefore runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heapBefore)
	const writes = 20000
	var wg sync.WaitGroup
	var last dstate.Generation
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range writes {
			g, _, err := shards["n0"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = int64(i + 1) })
			if err != nil {
				panic(fmt.Sprintf("mutate: %v", err))
			}
			last = g
		}
	}()
	// The live watcher keeps up while the other is stuck.
	seenLive := 0
	for {
		ch := live.next(t)
		seenLive++
		if ch.View != nil && ch.View.Value.Count == writes {
			break
		}
	}
	wg.Wait()
	eventually(t, "n1 holds n0's last view", func() bool { v, _, _ := counterOf(shards["n1"], "n0"); return v.Count == writes })
	var heapAfter runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heapAfter)
	grown := int64(heapAfter.HeapAlloc) - int64(heapBefore.HeapAlloc)
	t.Logf("live watcher woke %d times for %d writes; heap grew by %d KiB with a stuck watcher", seenLive, writes, grown/1024)
	require.Less(t, grown, int64(8<<20), "a stuck watcher's backlog must stay bounded")

	// The stuck watcher resumes: the remaining initial views, then n0's
	// latest, marked as skipping.
	ch := stuck.until(t, "n0's latest view", func(ch node.Change[dstatetest.Counter]) bool {
		return ch.Node == "n0" && ch.Generation == last
	})
	require.True(t, ch.Skipped, "a watcher that fell behind is told it skipped generations")
}

func TestWatchEndsWithContextAndClose(t *testing.T) {
	c := newTestCluster(t)
	c.Start("n0")
	shards := registerCounters(t, c, dstate.DefaultStateConfig())
	wctx, cancel := context.WithCancel(ctx)
	var got []error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, err := range shards["n0"].Watch(wctx, node.WatchOptions{}) {
			if err != nil {
				got = append(got, err)
			}
		}
	}()
	cancel()
	<-done
	require.Len(t, got, 1)
	require.ErrorIs(t, got[0], context.Canceled)

	w := startWatch(t, shards["n0"], node.WatchOptions{}, 0)
	w.next(t)
	c.Stop("n0")
	select {
	case err := <-w.errc:
		require.True(t, errors.Is(err, node.ErrWatchClosed), "%v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not end when the node stopped")
	}
}

// holdsAll reports whether s holds n views whose states have arrived.
func holdsAll(s *counterShard, n int) bool {
	got := 0
	for _, v := range s.Views().All {
		if !v.Generation.IsZero() {
			got++
		}
	}
	return got == n
}
