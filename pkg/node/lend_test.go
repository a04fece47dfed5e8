package node_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/node/nodetest"
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
	release := blockActor(t, shards["n1"])

	const n = 200
	for i := range n {
		_, _, err := shards["n0"].MutateDelta(ctx, dstatetest.Set(fmt.Sprintf("key-%03d", i), int64(i)))
		require.NoError(t, err)
	}
	eventually(t, "n2 applies n0's deltas", func() bool {
		v, ok := shards["n2"].Views().Get("n0")
		return ok && v.Generation.Age == n
	})
	release()
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
	// The deltas that piled up behind the busy actor reached it in runs
	// (dstate.BatchLender, dstate.Engine.HandleDeltaRun).
	st := c.Nodes["n1"].Stats()
	require.NotZero(t, st.DeltaRuns, "no run of deltas reached n1's actor")
	require.Greater(t, st.DeltasInRuns, st.DeltaRuns, "no run held more than one delta")
}

// Deltas of two states that arrive together, interleaved, reach each
// state in order: the runs of one state split where the other's deltas
// come between, and every delta applies once, in its place.
func TestInterleavedRunsOfTwoStatesApplyInOrder(t *testing.T) {
	c := threeNodes(t)
	gauges := registerGauges(t, c)
	others := make(map[dstate.NodeID]*gaugesShard)
	for id, n := range c.Nodes {
		sh, err := node.RegisterDelta(ctx, n, renamedGauges{}, node.StateOptions[dstatetest.Gauges]{
			Config: dstate.DefaultStateConfig(), Initial: dstatetest.NewGauges()})
		require.NoError(t, err, "register gauges-2 on %s", id)
		others[id] = sh
	}
	c.JoinAll()
	for _, sh := range []map[dstate.NodeID]*gaugesShard{gauges, others} {
		eventually(t, "joined views", func() bool {
			v, ok := sh["n1"].Views().Get("n0")
			return ok && !v.Generation.IsZero()
		})
	}

	// Block both of n1's actors inside mutations of their own: n0's
	// deltas pile up behind them, and the reader hands them over in
	// batches.
	releaseGauges, releaseOthers := blockActor(t, gauges["n1"]), blockActor(t, others["n1"])
	const n = 300
	for i := range n {
		sh := gauges["n0"]
		if i%3 == 1 || i%7 == 0 {
			sh = others["n0"]
		}
		_, _, err := sh.MutateDelta(ctx, dstatetest.Set(fmt.Sprintf("key-%03d", i), int64(i)))
		require.NoError(t, err)
	}
	releaseGauges()
	releaseOthers()
	for _, sh := range []map[dstate.NodeID]*gaugesShard{gauges, others} {
		own, _ := sh["n0"].Views().Get("n0")
		eventually(t, "n1 applies n0's deltas", func() bool {
			v, ok := sh["n1"].Views().Get("n0")
			return ok && v.Generation == own.Generation
		})
		v, _ := sh["n1"].Views().Get("n0")
		require.Equal(t, own.Value, v.Value, "n1's view of n0")
	}
	for _, sh := range []map[dstate.NodeID]*gaugesShard{gauges, others} {
		require.Equal(t, sh["n2"].Metrics().SnapshotsReceived, sh["n1"].Metrics().SnapshotsReceived,
			"snapshots n1 and n2 received: n1 lost deltas, refused them or applied them out of order")
		require.Zero(t, sh["n1"].Metrics().AgeGaps, "n1 saw gaps in n0's deltas")
	}
	require.NotZero(t, c.Nodes["n1"].Stats().DeltaRuns)
}

// renamedGauges is GaugesState under another name, a second state of the
// same shape.
type renamedGauges struct{ dstatetest.GaugesState }

func (renamedGauges) Name() string { return "gauges-2" }

// Runs of deltas that a full mailbox refuses are counted as dropped, and
// the receiver recovers what they carried: the next delta it takes is a
// gap, which pulls a snapshot.
func TestRefusedRunsAreRecovered(t *testing.T) {
	cfg := gosched.DefaultConfig()
	cfg.Logger = quietLogger()
	cfg.MailboxSize = 2
	rt, err := gosched.New(cfg)
	require.NoError(t, err)
	t.Cleanup(rt.Close)
	c := nodetest.NewCluster(t, rt)
	c.Name = "test"
	for _, id := range []dstate.NodeID{"n0", "n1"} {
		c.Start(id)
	}
	shards := registerGauges(t, c)
	c.JoinAll()
	eventually(t, "joined views", func() bool {
		v, ok := shards["n1"].Views().Get("n0")
		return ok && !v.Generation.IsZero()
	})

	release := blockActor(t, shards["n1"])
	for i := range 300 {
		_, _, err := shards["n0"].MutateDelta(ctx, dstatetest.Set(fmt.Sprintf("key-%03d", i), int64(i)))
		require.NoError(t, err)
	}
	eventually(t, "n1's mailbox refuses runs", func() bool { return c.Nodes["n1"].Stats().MailboxDrops > 0 })
	release()
	// One more delta after the loss: n1 sees the gap and pulls.
	_, _, err = shards["n0"].MutateDelta(ctx, dstatetest.Set("last", 1))
	require.NoError(t, err)
	own, _ := shards["n0"].Views().Get("n0")
	eventually(t, "n1 recovers n0's view", func() bool {
		v, ok := shards["n1"].Views().Get("n0")
		return ok && v.Generation == own.Generation
	})
	v, _ := shards["n1"].Views().Get("n0")
	require.Equal(t, own.Value, v.Value)
	require.NotZero(t, shards["n1"].Metrics().AgeGaps, "the loss was not seen as a gap")
}

// blockActor blocks sh's actor inside a mutation of its own until release
// is called, which waits for the mutation to succeed.
func blockActor(t *testing.T, sh *gaugesShard) (release func()) {
	t.Helper()
	started, done := make(chan struct{}), make(chan struct{})
	blocked := make(chan error, 1)
	go func() {
		_, _, err := sh.MutateDelta(ctx, func(g *dstatetest.Gauges) dstatetest.GaugeChange {
			close(started)
			<-done
			return dstatetest.Set("own", 1)(g)
		})
		blocked <- err
	}()
	<-started
	return func() {
		t.Helper()
		close(done)
		require.NoError(t, <-blocked)
	}
}
