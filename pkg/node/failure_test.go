package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
)

// killedPeerCluster starts n0, n1 and n2 with the counter state (cfg), sets
// n2's count to 2, waits until n1 holds every view, then stops n2 without
// telling the others.
func killedPeerCluster(t testing.TB, cfg dstate.StateConfig) (*testCluster, map[dstate.NodeID]*counterShard) {
	t.Helper()
	c := newTestCluster(t)
	for _, id := range []dstate.NodeID{"n0", "n1", "n2"} {
		c.Start(id)
	}
	shards := registerCounters(t, c, cfg)
	c.JoinAll()
	_, _, err := shards["n2"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 2 })
	require.NoError(t, err)
	eventually(t, "n1 holds n0's view and n2's count", func() bool {
		_, _, a := counterOf(shards["n1"], "n0")
		v, _, b := counterOf(shards["n1"], "n2")
		return a && b && v.Count == 2
	})
	c.Stop("n2")
	return c, shards
}

// queryN2 runs a query on s and returns the count of n2 that fn saw (-1
// for none) with the query's error.
func queryN2(ctx context.Context, s *counterShard, maxStaleness time.Duration) (int64, error) {
	var n2 int64 = -1
	err := s.Query(ctx, maxStaleness, func(vs dstate.Views[dstatetest.Counter]) {
		if v, ok := vs.Get("n2"); ok {
			n2 = v.Value.Count
		}
	})
	return n2, err
}

func requireFailedN2(t *testing.T, err error) {
	t.Helper()
	var qe *dstate.QueryError
	require.ErrorAs(t, err, &qe, "got %v, want a *dstate.QueryError", err)
	require.ErrorIs(t, err, dstate.ErrStalePeer, "existing callers still see ErrStalePeer")
	require.ErrorIs(t, err, dstate.ErrPeerFailed)
	require.Equal(t, []dstate.NodeID{"n2"}, qe.Failed, "got failed peers %v, want the killed n2", qe.Failed)
	require.Empty(t, qe.StaleNodes(), "got stale peers %v, want none but n2 (n0 answers its pull)", qe.StaleNodes())
}

// With one of three nodes killed and reported failed, a query on a survivor
// does not wait for it: PullTimeout is a minute and the query's deadline
// much shorter, so a query that waited would end with the context's error.
func TestQueryDoesNotWaitForFailedPeer(t *testing.T) {
	cfg := dstate.DefaultStateConfig()
	cfg.PullTimeout = time.Minute
	c, shards := killedPeerCluster(t, cfg)
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeFailed, Node: "n2"})
	eventually(t, "n1 takes n2 for failed", func() bool {
		return slices.ContainsFunc(shards["n1"].FailedPeers(), func(f dstate.StalePeer) bool { return f.Node == "n2" })
	})
	for _, maxStale := range []time.Duration{0, time.Millisecond, -1} {
		t.Run(fmt.Sprintf("max staleness %s", maxStale), func(t *testing.T) {
			qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			n2, err := queryN2(qctx, shards["n1"], maxStale)
			require.NoError(t, qctx.Err(), "the query must return before its deadline, not wait the pull timeout")
			if maxStale < 0 {
				// Age does not count: n2's view is not stale.
				require.NoError(t, err)
			} else {
				requireFailedN2(t, err)
			}
			require.Equal(t, int64(2), n2, "the failed peer's last view stays readable")
		})
	}
	h, err := c.Nodes["n1"].Health(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, 1, h.States[0].FailingPeers, "health counts the failed peer: %+v", h.States[0])
	require.Equal(t, dstate.Unhealthy, h.Status, "one of two peers failed is half")
}

// Without a failure event, a killed peer costs one pull timeout: the next
// query remembers that it did not answer and does not wait for it again.
func TestUnansweredPeerIsNotWaitedForAgain(t *testing.T) {
	cfg := dstate.DefaultStateConfig()
	cfg.PullTimeout = 3 * time.Second
	_, shards := killedPeerCluster(t, cfg)

	qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := queryN2(qctx, shards["n1"], 0)
	require.NoError(t, qctx.Err())
	var qe *dstate.QueryError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, []dstate.NodeID{"n2"}, qe.StaleNodes(), "the first query waits for n2 and names it stale")
	require.False(t, errors.Is(err, dstate.ErrPeerFailed), "n2 was not known to be down yet: %v", err)

	// Shorter than the pull timeout: waiting for n2 again would miss it.
	qctx2, cancel2 := context.WithTimeout(ctx, cfg.PullTimeout*2/3)
	defer cancel2()
	n2, err := queryN2(qctx2, shards["n1"], 0)
	require.NoError(t, qctx2.Err(), "the second query must not wait for the unanswered peer")
	requireFailedN2(t, err)
	require.Equal(t, int64(2), n2)
	st, err := shards["n1"].PeerStatuses(ctx)
	require.NoError(t, err)
	i := slices.IndexFunc(st, func(s dstate.PeerStatus) bool { return s.Node == "n2" })
	require.GreaterOrEqual(t, i, 0)
	require.Contains(t, st[i].Failed, "pull timeout", "n2's status says why it counts as failed")
}

// A peer that comes back after a failure is waited for again, and its view
// is stale until its new snapshot arrives.
func TestRestartedFailedPeerIsFreshAgain(t *testing.T) {
	cfg := dstate.DefaultStateConfig()
	cfg.PullTimeout = time.Minute
	c, shards := killedPeerCluster(t, cfg)
	c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeFailed, Node: "n2"})
	eventually(t, "n1 takes n2 for failed", func() bool { return len(shards["n1"].FailedPeers()) == 1 })

	s2, err := node.Register(ctx, c.Start("n2"), dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{Config: cfg})
	require.NoError(t, err)
	_, _, err = s2.Mutate(ctx, func(s *dstatetest.Counter) { s.Count = 20 })
	require.NoError(t, err)
	c.JoinAll()
	qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	eventually(t, "n1 reads n2's new life", func() bool {
		v, err := queryN2(qctx, shards["n1"], time.Hour)
		return err == nil && v == 20
	})
	require.Empty(t, shards["n1"].FailedPeers())
}

// BenchmarkQueryFailedPeer measures Query on a survivor while one of three
// nodes is killed and reported failed, with a one-minute PullTimeout. At
// max staleness 0 every query pulls the live peer n0 and waits for its
// answer over loopback TCP; at 2 s the views of n0 are refreshed by a pull
// once they are older than that and most queries answer from the views
// held. Every query names n2 failed. It reports p50-µs and p99-µs of the
// query's duration; run it with
//
//	go test -run '^$' -bench QueryFailedPeer -benchtime=20000x ./pkg/node
func BenchmarkQueryFailedPeer(b *testing.B) {
	for _, maxStale := range []time.Duration{0, 2 * time.Second} {
		b.Run(fmt.Sprintf("max-staleness-%s", maxStale), func(b *testing.B) {
			cfg := dstate.DefaultStateConfig()
			cfg.PullTimeout = time.Minute
			c, shards := killedPeerCluster(b, cfg)
			c.Events.Emit(dstate.ClusterEvent{Kind: dstate.NodeFailed, Node: "n2"})
			s := shards["n1"]
			eventually(b, "n1 takes n2 for failed", func() bool { return len(s.FailedPeers()) == 1 })
			eventually(b, "n1's view of n2 is stale", func() bool {
				vs := s.Views()
				v, _ := vs.Get("n2")
				return time.Since(vs.SyncedAt(v)) > maxStale
			})
			lat := make([]time.Duration, 0, b.N)
			fn := func(vs dstate.Views[dstatetest.Counter]) {}
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				err := s.Query(ctx, maxStale, fn)
				lat = append(lat, time.Since(t0))
				if !errors.Is(err, dstate.ErrPeerFailed) {
					b.Fatalf("query: %v, want n2 named failed", err)
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(us(percentile(lat, 0.50)), "p50-µs")
			b.ReportMetric(us(percentile(lat, 0.99)), "p99-µs")
			b.ReportMetric(us(lat[len(lat)-1]), "max-µs")
		})
	}
}
