package node_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node/nodetest"
)

// testCluster is N nodes in one process over real loopback TCP, with a
// shared, hand-driven membership feed, on one gosched runtime.
type testCluster = nodetest.Cluster

type counterShard = nodetest.CounterShard

var (
	registerCounters = nodetest.RegisterCounters
	counterOf        = nodetest.CounterOf
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestCluster returns an empty cluster on a fresh gosched runtime; the
// nodes are closed before the runtime when the test ends.
func newTestCluster(t testing.TB) *testCluster {
	t.Helper()
	cfg := gosched.DefaultConfig()
	cfg.Logger = quietLogger()
	rt, err := gosched.New(cfg)
	require.NoError(t, err)
	t.Cleanup(rt.Close)
	c := nodetest.NewCluster(t, rt)
	c.Name = "test"
	return c
}

func threeNodes(t *testing.T) *testCluster {
	c := newTestCluster(t)
	for _, id := range []dstate.NodeID{"n0", "n1", "n2"} {
		c.Start(id)
	}
	return c
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, what)
}
