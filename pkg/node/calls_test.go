package node_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
)

// Mutations are pooled call objects. A call abandoned by its caller (ctx
// ended while it waited behind a busy actor) still runs later, and must
// not be handed to another caller meanwhile: every later caller gets its
// own answer.
func TestAbandonedMutationCallIsNotReused(t *testing.T) {
	c := newTestCluster(t)
	n := c.Start("n0")
	s, err := node.RegisterDelta(ctx, n, dstatetest.GaugesState{}, node.StateOptions[dstatetest.Gauges]{Initial: dstatetest.NewGauges()})
	require.NoError(t, err)

	started, release := make(chan struct{}), make(chan struct{})
	blocked := make(chan error, 1)
	go func() {
		_, _, err := s.MutateDelta(ctx, func(g *dstatetest.Gauges) dstatetest.GaugeChange {
			close(started)
			<-release
			return dstatetest.Set("first", 1)(g)
		})
		blocked <- err
	}()
	<-started

	cctx, cancel := context.WithCancel(ctx)
	abandoned := make(chan error, 1)
	go func() {
		_, _, err := s.MutateDelta(cctx, dstatetest.Set("abandoned", 2))
		abandoned <- err
	}()
	// MutateDelta queues its call before it looks at ctx, so the call is
	// in the mailbox whenever the cancel lands.
	cancel()
	require.ErrorIs(t, <-abandoned, context.Canceled)
	close(release)
	require.NoError(t, <-blocked)

	for i := range 100 {
		key := fmt.Sprintf("k%d", i)
		gen, view, err := s.MutateDelta(ctx, dstatetest.Set(key, int64(i)))
		require.NoError(t, err)
		require.Equal(t, int64(i), view[key], "mutation %d answered with another call's view", i)
		require.Equal(t, s.Generation(), gen)
	}
	v, ok := s.Views().Get("n0")
	require.True(t, ok)
	require.Equal(t, int64(1), v.Value["first"])
	require.Equal(t, int64(2), v.Value["abandoned"], "the abandoned mutation was not applied")
	require.Equal(t, uint64(102), v.Generation.Age)
}
