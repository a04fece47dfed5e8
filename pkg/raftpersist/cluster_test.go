package raftpersist

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/stretchr/testify/require"
)

func TestClusterSaveAndLoadFromLeaderAndFollowers(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	ctx := ctxT(t, 10*time.Second)
	for i := range 3 {
		p := stateOf(c.node(i), "greeting")
		require.NoError(t, p.Save(ctx, obj(100, uint64(i), fmt.Sprintf("hello from n%d", i)), nil), "save on n%d (leader n%d)", i, l)
	}
	for i := range 3 {
		for j := range 3 {
			// Node i reads node j's state: linearizable, so the save is visible everywhere at once.
			got, err := stateOfNode(c.node(i), "greeting", dstate.NodeID(fmt.Sprintf("n%d", j))).Load(ctx)
			require.NoError(t, err)
			require.NotNil(t, got, "n%d reading n%d", i, j)
			require.Equal(t, fmt.Sprintf("hello from n%d", j), got.Value)
			require.Equal(t, dstate.Generation{Incarnation: 100, Age: uint64(j)}, got.Generation)
			require.Equal(t, int64(100), got.CreatedUnixMs)
		}
	}
	all, err := loadAll(ctx, c.node(c.follower()), "greeting")
	require.NoError(t, err)
	require.Len(t, all, 3)
	none, err := stateOf(c.node(0), "other").Load(ctx)
	require.NoError(t, err)
	require.Nil(t, none)
}

func TestClusterFencing(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 10*time.Second)
	p := stateOf(c.node(c.follower()), "s")
	require.NoError(t, p.Save(ctx, obj(2, 5, "new incarnation"), nil))

	err := p.Save(ctx, obj(1, 9, "stale incarnation"), nil)
	require.ErrorIs(t, err, ErrFenced)
	require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
	var pe *dstate.PersistError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, dstate.Generation{Incarnation: 2, Age: 5}, pe.Stored)
	var fe *FencedError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, dstate.Generation{Incarnation: 1, Age: 9}, fe.Attempted)

	require.ErrorIs(t, p.Save(ctx, obj(2, 5, "same generation, other value"), nil), ErrFenced)
	require.NoError(t, p.Save(ctx, obj(2, 5, "new incarnation"), nil), "an identical retried save is accepted")
	got, err := p.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "new incarnation", got.Value)
}

func TestClusterLeaderKilledNoAcknowledgedSaveLost(t *testing.T) {
	forEachLogStore(t, testClusterLeaderKilledNoAcknowledgedSaveLost)
}

func testClusterLeaderKilledNoAcknowledgedSaveLost(t *testing.T, store string) {
	c := newCluster(t, 3, withLogStore(store, anyOwner))
	old := c.leader()
	// Writers on the two nodes that survive save increasing ages; we record
	// the last acknowledged age of each.
	var survivors []int
	for i := range 3 {
		if i != old {
			survivors = append(survivors, i)
		}
	}
	var mu sync.Mutex
	acked := map[int]uint64{}
	afterKill := map[int]int{}
	killed := make(chan struct{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range survivors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := stateOfNode(c.node(w), "counter", dstate.NodeID(fmt.Sprintf("w%d", w)))
			for age := uint64(1); ; age++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := p.Save(ctx, obj(1, age, fmt.Sprint(age)), nil)
				cancel()
				if err == nil {
					mu.Lock()
					acked[w] = age
					select {
					case <-killed:
						afterKill[w]++
					default:
					}
					mu.Unlock()
				}
			}
		}()
	}
	eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return acked[survivors[0]] >= 10 && acked[survivors[1]] >= 10
	}, "saves before the kill")
	c.stop(old)
	close(killed)
	eventually(t, 15*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return afterKill[survivors[0]] >= 10 && afterKill[survivors[1]] >= 10
	}, "saves to continue under a new leader")
	close(stop)
	wg.Wait()
	require.NotEqual(t, old, c.leader())

	ctx := ctxT(t, 10*time.Second)
	for _, w := range survivors {
		for _, r := range survivors {
			got, err := stateOfNode(c.node(r), "counter", dstate.NodeID(fmt.Sprintf("w%d", w))).Load(ctx)
			require.NoError(t, err)
			require.NotNil(t, got)
			// The stored age is at least the last acknowledged one (a save
			// whose outcome was unknown may have landed after it).
			require.GreaterOrEqual(t, got.Generation.Age, acked[w], "writer w%d read on n%d", w, r)
		}
	}
	// The killed node comes back and sees the same.
	c.restart(old)
	for _, w := range survivors {
		got, err := stateOfNode(c.node(old), "counter", dstate.NodeID(fmt.Sprintf("w%d", w))).Load(ctx)
		require.NoError(t, err)
		require.GreaterOrEqual(t, got.Generation.Age, acked[w])
	}
}

func TestClusterRestartedNodeLoadsLastSave(t *testing.T) {
	forEachLogStore(t, testClusterRestartedNodeLoadsLastSave)
}

func testClusterRestartedNodeLoadsLastSave(t *testing.T, store string) {
	c := newCluster(t, 3, withLogStore(store, nil))
	f := c.follower()
	ctx := ctxT(t, 20*time.Second)
	p := stateOf(c.node(f), "s")
	for age := uint64(1); age <= 5; age++ {
		require.NoError(t, p.Save(ctx, obj(7, age, fmt.Sprint("v", age)), nil))
	}
	c.stop(f)
	s := c.restart(f)
	got, err := stateOf(s, "s").Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "v5", got.Value)
	require.Equal(t, dstate.Generation{Incarnation: 7, Age: 5}, got.Generation)

	// The whole cluster restarts from its data dirs.
	for i := range 3 {
		c.stop(i)
	}
	for i := range 3 {
		c.restart(i)
	}
	got, err = stateOf(c.node(f), "s").Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "v5", got.Value)
}

func TestClusterMinorityIsUnavailableBeforeDeadline(t *testing.T) {
	const applyTimeout = 800 * time.Millisecond
	c := newCluster(t, 3, func(_ int, cfg *Config) { cfg.ApplyTimeout = applyTimeout })
	// A first save on the healthy cluster. On a loaded machine the first
	// leader may lose its term before it commits (the save then fails as
	// storage unavailable); each try saves a newer age, so a try that did
	// land is never refused as stale by the next.
	l, age := -1, uint64(0)
	eventually(t, 20*time.Second, func() bool {
		l, age = c.leader(), age+1
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := stateOf(c.node(l), "s").Save(ctx, obj(1, age, "before"), nil)
		if err != nil {
			t.Logf("first save, try %d: %v", age, err)
		}
		return err == nil
	}, "a first save on a healthy cluster")
	// Keep the leader alone: it must not acknowledge anything any more.
	for i := range 3 {
		if i != l {
			c.stop(i)
		}
	}
	lone := c.node(l)
	const deadline = 700 * time.Millisecond
	for _, tc := range []struct {
		name string
		op   func(context.Context) error
	}{
		{"save", func(ctx context.Context) error {
			return stateOf(lone, "s").Save(ctx, obj(1, age+1, "after"), nil)
		}},
		{"load", func(ctx context.Context) error { _, err := stateOf(lone, "s").Load(ctx); return err }},
		{"load all", func(ctx context.Context) error { _, err := loadAll(ctx, lone, "s"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			took, err := returnsWithin(t, minorityLiveness, func() error { return tc.op(ctx) })
			require.Error(t, err, "a lone node must not acknowledge")
			require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
			var pe *dstate.PersistError
			require.ErrorAs(t, err, &pe)
			t.Logf("measured: returned after %s with a %s deadline: %v", took.Round(time.Millisecond), deadline, err)
		})
	}
	// A save without a deadline is bounded by ApplyTimeout.
	took, err := returnsWithin(t, minorityLiveness, func() error {
		return stateOf(lone, "s").Save(context.Background(), obj(1, age+2, "x"), nil)
	})
	require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
	t.Logf("measured: a save without a deadline returned after %s (ApplyTimeout %s): %v", took.Round(time.Millisecond), applyTimeout, err)
}

// minorityLiveness is how long an operation on a node without a quorum
// may take before the test calls it hung: a generous liveness timeout,
// many times the deadlines under test (which bound the operation
// themselves); the durations are logged as measurements.
const minorityLiveness = 30 * time.Second

// returnsWithin runs op and returns how long it took and its error,
// failing the test if it has not returned after timeout.
func returnsWithin(t *testing.T, timeout time.Duration, op func() error) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(timeout):
		t.Fatalf("the operation has not returned after %s", timeout)
		return 0, nil
	}
}

func TestClusterSnapshotInstallCatchesUpLaggingNode(t *testing.T) {
	forEachLogStore(t, testClusterSnapshotInstallCatchesUpLaggingNode)
}

func testClusterSnapshotInstallCatchesUpLaggingNode(t *testing.T, store string) {
	c := newCluster(t, 3, func(_ int, cfg *Config) {
		cfg.LogStore = store
		cfg.SnapshotThreshold = 16
		cfg.TrailingLogs = 8
		cfg.SnapshotInterval = time.Hour // snapshots only when the test asks
		anyOwner(0, cfg)                 // the leader may change during the saves
	})
	l := c.leader()
	lag := c.follower()
	ctx := ctxT(t, 20*time.Second)
	c.stop(lag)
	p := stateOf(c.node(l), "s")
	const n = 100
	for i := range n {
		require.NoError(t, stateOfNode(c.node(l), "s", dstate.NodeID(fmt.Sprint("k", i%10))).Save(ctx, obj(1, uint64(i), fmt.Sprint(i)), nil))
	}
	// Snapshot (and compact) every running node, so whichever leads must
	// send the lagging node a snapshot.
	for i := range 3 {
		if i != lag {
			require.NoError(t, c.node(i).Snapshot())
		}
	}
	require.NoError(t, p.Save(ctx, obj(1, 1, "after the snapshot"), nil))
	st, err := c.node(l).Stats(ctx)
	require.NoError(t, err)
	for _, ps := range st.Peers {
		if ps.ID == c.node(l).ID() {
			require.Greater(t, ps.LastSnapshotIndex, uint64(0))
		}
	}

	s := c.restart(lag)
	eventually(t, 15*time.Second, func() bool {
		e := s.LoadLocal("s", c.node(l).ID())
		return e != nil && string(e.Data) == "after the snapshot"
	}, "the restarted node to catch up")
	if store == LogStoreBoltDB {
		// raft-wal may keep a compacted prefix readable (it drops whole
		// segments only), so the leader can still send those entries.
		require.GreaterOrEqual(t, s.fsm.restores.Load(), int64(1), "the lagging node caught up by installing a snapshot")
	}
	for i := range 10 {
		e := s.LoadLocal("s", dstate.NodeID(fmt.Sprint("k", i)))
		require.NotNil(t, e)
		require.Equal(t, fmt.Sprint(90+i), string(e.Data))
	}
	got, err := stateOfNode(s, "s", "k9").Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "99", got.Value)
}

func TestClusterDeserializationFailureCarriesStoredGeneration(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 10*time.Second)
	s := c.node(0)
	require.NoError(t, s.SaveEnvelope(ctx, dstate.StoredEnvelope{State: "s", Node: s.ID(), Generation: dstate.Generation{Incarnation: 3, Age: 1}, StorageVersion: 42, Data: []byte("?")}))
	_, err := stateOf(s, "s").Load(ctx)
	require.ErrorIs(t, err, dstate.ErrDeserializationFailed)
	require.ErrorIs(t, err, dstate.ErrUnknownVersion)
	var pe *dstate.PersistError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, dstate.Generation{Incarnation: 3, Age: 1}, pe.Stored)
}

func TestClusterGroupCommitOffStillWorks(t *testing.T) {
	c := newCluster(t, 3, func(_ int, cfg *Config) { cfg.DisableGroupCommit = true; anyOwner(0, cfg) })
	ctx := ctxT(t, 10*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- stateOfNode(c.node(i%3), "s", dstate.NodeID(fmt.Sprint("k", i))).Save(ctx, obj(1, 1, "v"), nil)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	all, err := c.node(0).LoadAllEnvelopes(ctx, "s")
	require.NoError(t, err)
	require.Len(t, all, 30)
}

func TestClosedStoreRejects(t *testing.T) {
	c := newCluster(t, 1, nil)
	s := c.node(0)
	ctx := ctxT(t, 5*time.Second)
	require.NoError(t, stateOf(s, "s").Save(ctx, obj(1, 1, "x"), nil))
	c.stop(0)
	require.NoError(t, s.Close(), "Close is idempotent")
	err := stateOf(s, "s").Save(ctx, obj(1, 2, "x"), nil)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
	_, err = stateOf(s, "s").Load(ctx)
	require.ErrorIs(t, err, ErrClosed)
	require.True(t, errors.Is(err, dstate.ErrStorageUnavailable))
}

func TestStoreAsAHostStore(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 10*time.Second)
	f := c.node(c.follower())
	var es interface {
		dstate.EnvelopeStore
		dstate.EnvelopeReader
	} = f
	env := dstate.StoredEnvelope{State: "s", Node: f.ID(), Generation: dstate.Generation{Incarnation: 7, Age: 1}, StorageVersion: 1,
		CreatedUnixMs: 5, ModifiedUnixMs: 6, Data: []byte("x")}
	require.NoError(t, es.SaveEnvelope(ctx, env))
	got, err := c.node(c.leader()).LoadEnvelope(ctx, "s", f.ID())
	require.NoError(t, err)
	require.Equal(t, env, *got)
	none, err := es.LoadEnvelope(ctx, "s", "n9")
	require.NoError(t, err)
	require.Nil(t, none)
	all, err := es.LoadAllEnvelopes(ctx, "s")
	require.NoError(t, err)
	require.Equal(t, []dstate.StoredEnvelope{env}, all)
	older := env
	older.Data = []byte("y")
	err = es.SaveEnvelope(ctx, older)
	require.ErrorIs(t, err, dstate.ErrStorageUnavailable, "fenced: not newer than the stored generation")
}
