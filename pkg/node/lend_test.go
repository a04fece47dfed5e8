package node_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// Inbound frames are lent by the transport and handled on its goroutine
// when the state's actor is idle; a message queued behind a busy actor
// keeps its frame. Deltas that arrive while the actor is blocked must all
// apply with their own bytes, not those of the frames read after them.
func TestMessagesQueuedBehindABusyActorKeepTheirFrames(t *testing.T) {
	c := threeNodes(t)
	shards := registerGauges(t, c)
	c.JoinAll()
	eventually(t, "joined views", func() bool {
		v1, ok1 := shards["n1"].Views().Get("n0")
		v2, ok2 := shards["n2"].Views().Get("n0")
		return ok1 && ok2 && !v1.Generation.IsZero() && !v2.Generation.IsZero()
	})

	// Block n1's actor inside one of its own mutations.
	started, release := make(chan struct{}), make(chan struct{})
	blocked := make(chan error, 1)
	go func() {
		_, _, err := shards["n1"].MutateDelta(ctx, func(g *dstatetest.Gauges) dstatetest.GaugeChange {
			close(started)
			<-release
			return dstatetest.Set("own", 1)(g)
		})
		blocked <- err
	}()
	<-started

	const n = 200
	for i := range n {
		_, _, err := shards["n0"].MutateDelta(ctx, dstatetest.Set(fmt.Sprintf("key-%03d", i), int64(i)))
		require.NoError(t, err)
	}
	eventually(t, "n2 applies n0's deltas", func() bool {
		v, ok := shards["n2"].Views().Get("n0")
		return ok && v.Generation.Age == n
	})
	close(release)
	require.NoError(t, <-blocked)
	// While n1's actor works through its queue, giving the frames back
	// (dstate.FrameLender.ReturnFrame), the reader reads the next deltas
	// into returned frames: none may be read into while still in use.
	for i := n; i < 2*n; i++ {
		_, _, err := shards["n0"].MutateDelta(ctx, dstatetest.Set(fmt.Sprintf("key-%03d", i), int64(i)))
		require.NoError(t, err)
	}
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" applies n0's deltas", func() bool {
			v, ok := shards[obs].Views().Get("n0")
			return ok && v.Generation.Age == 2*n
		})
		v, _ := shards[obs].Views().Get("n0")
		require.Len(t, v.Value, 2*n, "%s's view of n0", obs)
		for i := range 2 * n {
			require.Equal(t, int64(i), v.Value[fmt.Sprintf("key-%03d", i)], "%s's view of n0, key %d", obs, i)
		}
	}
	require.Zero(t, shards["n1"].Metrics().SnapshotsReceived-shards["n2"].Metrics().SnapshotsReceived,
		"n1 needed snapshots n2 did not: deltas were lost or refused")
}
