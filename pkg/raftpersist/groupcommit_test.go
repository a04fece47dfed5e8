package raftpersist

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// saveAll saves obj(1, age, v) for each key concurrently from s and returns
// each key's error.
func saveAll(ctx context.Context, s *Store, keys []dstate.NodeID, age uint64) []error {
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			errs[i] = stateOfNode(s, "gc", k).Save(ctx, obj(1, age, fmt.Sprint(age)), nil)
		})
	}
	wg.Wait()
	return errs
}

func gcKeys(n int) []dstate.NodeID {
	keys := make([]dstate.NodeID, n)
	for i := range keys {
		keys[i] = dstate.NodeID(fmt.Sprint("k", i))
	}
	return keys
}

// A batch that cannot commit (the leader lost its followers) fails every
// save in it with an error that says why; the batcher is not wedged by it,
// and the saves acknowledged before are still there afterwards.
func TestGroupCommitFailedBatchFailsEverySave(t *testing.T) {
	c := newCluster(t, 3, anyOwner)
	keys := gcKeys(16)
	l := c.leader()
	for i, err := range saveAll(ctxT(t, 10*time.Second), c.node(l), keys, 1) {
		require.NoError(t, err, "key %s", keys[i])
	}
	var followers []int
	for i := range 3 {
		if i != l {
			followers = append(followers, i)
			c.stop(i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for i, err := range saveAll(ctx, c.node(l), keys, 2) {
		require.Error(t, err, "key %s: a save without a quorum must not be acknowledged", keys[i])
		require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
		var qe *QuorumError
		require.True(t, errors.Is(err, ErrOutcomeUnknown) || errors.As(err, &qe) || errors.Is(err, ErrNoLeader),
			"key %s: the error names the lost quorum or the unknown outcome: %v", keys[i], err)
	}
	for _, f := range followers {
		c.restart(f)
	}
	// Every key saves again once the cluster is back: no batch or slot
	// was left behind by the failed ones.
	eventually(t, 20*time.Second, func() bool {
		for _, err := range saveAll(ctxT(t, 5*time.Second), c.node(l), keys, 3) {
			if err != nil {
				return false
			}
		}
		return true
	}, "saves after the followers came back")
	all, err := loadAll(ctxT(t, 10*time.Second), c.node(l), "gc")
	require.NoError(t, err)
	require.Len(t, all, len(keys))
	for _, k := range keys {
		require.Equal(t, uint64(3), all[k].Generation.Age, "key %s", k)
	}
}

// With tiny batches, full batches are pipelined (several in flight at
// once, up to MaxInflight, and saves waiting for a slot): every save is
// acknowledged and every node stores the last one of each key.
func TestGroupCommitPipelinesFullBatches(t *testing.T) {
	c := newCluster(t, 3, func(i int, cfg *Config) {
		anyOwner(i, cfg)
		cfg.MaxBatch, cfg.MaxInflight = 2, 2
	})
	keys := gcKeys(24)
	var wg sync.WaitGroup
	errs := make(chan error, len(keys))
	ctx := ctxT(t, 30*time.Second)
	for i, k := range keys {
		wg.Go(func() {
			p := stateOfNode(c.node(i%3), "gc", k)
			for age := uint64(1); age <= 10; age++ {
				if err := p.Save(ctx, obj(1, age, fmt.Sprint(age)), nil); err != nil {
					errs <- fmt.Errorf("key %s age %d: %w", k, age, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for n := range 3 {
		all, err := loadAll(ctx, c.node(n), "gc")
		require.NoError(t, err)
		require.Len(t, all, len(keys))
		for _, k := range keys {
			require.Equal(t, uint64(10), all[k].Generation.Age, "key %s on n%d", k, n)
		}
	}
}

// Close answers the saves in a batch in flight and the saves queued
// behind it: none is left waiting, and none is acknowledged.
func TestGroupCommitCloseAnswersInflightAndQueuedSaves(t *testing.T) {
	c := newCluster(t, 3, func(i int, cfg *Config) {
		anyOwner(i, cfg)
		cfg.ApplyTimeout = time.Minute
		cfg.MaxBatch = 4
	})
	l := c.leader()
	s := c.node(l)
	for i := range 3 {
		if i != l {
			c.stop(i)
		}
	}
	keys := gcKeys(20)
	errs := make(chan error, len(keys))
	for _, k := range keys {
		go func() {
			errs <- stateOfNode(s, "gc", k).Save(context.Background(), obj(1, 1, "x"), nil)
		}()
	}
	c.stop(l)
	got := 0
	deadline := time.After(30 * time.Second) // hang detection only
	for got < len(keys) {
		select {
		case err := <-errs:
			got++
			require.Error(t, err, "no save is acknowledged without a quorum")
			require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
		case <-deadline:
			t.Fatalf("%d of %d saves still waiting after Close", len(keys)-got, len(keys))
		}
	}
}

// Close while batches are in flight (the leader's state machine is held,
// so they cannot be answered), one full batch waits for a slot and more
// saves are queued: every save returns, none acknowledged, each with
// ErrClosed; those that may have committed also say the outcome is
// unknown.
func TestGroupCommitCloseWithBatchesInFlight(t *testing.T) {
	c := newCluster(t, 3, func(i int, cfg *Config) {
		anyOwner(i, cfg)
		cfg.ApplyTimeout = time.Minute
		cfg.MaxBatch, cfg.MaxInflight = 2, 2
	})
	l := c.leader()
	s := c.node(l)
	s.fsm.mu.Lock()
	locked := true
	defer func() {
		if locked {
			s.fsm.mu.Unlock()
		}
	}()
	keys := gcKeys(20)
	errs := make(chan error, len(keys))
	for _, k := range keys {
		go func() {
			errs <- stateOfNode(s, "gc", k).Save(context.Background(), obj(1, 1, "x"), nil)
		}()
	}
	// Two batches in flight, one waiting for a slot, the queue full and
	// the other savers waiting to enter it.
	eventually(t, 10*time.Second, func() bool { return len(s.saves) == cap(s.saves) }, "saves queued behind the batches in flight")
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	unknown := 0
	deadline := time.After(30 * time.Second) // hang detection only
	for got := 0; got < len(keys); got++ {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, ErrClosed)
			require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
			if errors.Is(err, ErrOutcomeUnknown) {
				unknown++
			}
		case <-deadline:
			t.Fatalf("%d of %d saves still waiting after Close", len(keys)-got, len(keys))
		}
	}
	// The saves sent to raft may have committed: their outcome is unknown.
	// (A save whose context ended before the batcher's answer reached it
	// says so too: unknown is never wrong, only less precise.)
	require.GreaterOrEqual(t, unknown, 1, "the saves sent to raft may have committed: their outcome is unknown")
	s.fsm.mu.Unlock()
	locked = false
	require.NoError(t, <-closed)
}

// A batch whose commit does not finish (its leader went away and the
// commit waits out a timeout) does not hold back the saves behind it for
// longer than batchWait: the next batch goes out alongside it.
func TestGroupCommitStuckBatchDoesNotHoldBackTheNext(t *testing.T) {
	c := newCluster(t, 3, anyOwner)
	l := c.node(c.leader())
	stuck, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l.beforeCommit = func() {
		first := false
		once.Do(func() { first = true })
		if first {
			close(stuck)
			<-release
		}
	}
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	ctx := ctxT(t, 20*time.Second)
	firstDone := make(chan error, 1)
	go func() { firstDone <- stateOfNode(l, "gc", "held").Save(ctx, obj(1, 1, "held"), nil) }()
	<-stuck
	// The first batch is in flight and cannot finish; this save must not
	// wait for it.
	require.NoError(t, stateOfNode(l, "gc", "next").Save(ctx, obj(1, 1, "next"), nil))
	select {
	case err := <-firstDone:
		t.Fatalf("the held batch finished while held: %v", err)
	default:
	}
	close(release)
	require.NoError(t, <-firstDone)
}
