package serfevents_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/serfevents"
	"github.com/dstate-go/dstate/pkg/transport"
)

type gaugesShard = node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]

// host is one whole node: serf membership, TCP transport, the host and a
// registered delta state.
type host struct {
	ms    *serfevents.Membership
	n     *node.Node
	g     *gaugesShard
	gcfg  serfevents.Config // for a restart: same name, gossip port and snapshot
	alive bool
}

type hostCluster struct {
	t     *testing.T
	rt    *gosched.Runtime
	dir   string
	seed  string
	hosts map[dstate.NodeID]*host
}

func newHostCluster(t *testing.T) *hostCluster {
	cfg := gosched.DefaultConfig()
	cfg.Logger = testLogger()
	rt, err := gosched.New(cfg)
	require.NoError(t, err)
	hc := &hostCluster{t: t, rt: rt, dir: t.TempDir(), hosts: map[dstate.NodeID]*host{}}
	t.Cleanup(func() {
		for _, h := range hc.hosts {
			hc.stop(h, true)
		}
		rt.Close()
	})
	return hc
}

// start starts node id: a transport on a free port, serf advertising it in
// its tags, the host, and the gauges state. Restarts reuse the gossip port
// and the snapshot (but get a new transport port, which the tags carry).
func (hc *hostCluster) start(id dstate.NodeID) *host {
	t := hc.t
	t.Helper()
	tcfg := transport.DefaultConfig()
	tcfg.NodeID = id
	tcfg.ClusterName = "serfevents-test"
	tcfg.BindAddr = "127.0.0.1:0"
	tcfg.ReconnectBackoffMin = 10 * time.Millisecond
	tcfg.ReconnectBackoffMax = 100 * time.Millisecond
	tcfg.Logger = testLogger()
	tr, err := transport.New(tcfg)
	require.NoError(t, err)

	h := hc.hosts[id]
	if h == nil {
		gcfg := serfevents.LocalConfig()
		gcfg.NodeID = id
		gcfg.ClusterName = "serfevents-test"
		gcfg.Logger = testLogger()
		gcfg.SnapshotPath = filepath.Join(hc.dir, string(id)+".snapshot")
		if hc.seed != "" {
			gcfg.Seeds = []string{hc.seed}
		}
		h = &host{gcfg: gcfg}
		hc.hosts[id] = h
	}
	gcfg := h.gcfg
	gcfg.Tags = map[string]string{serfevents.TagTransport: tr.Addr(), serfevents.TagStates: "gauges=1"}
	ms, err := serfevents.New(gcfg)
	require.NoError(t, err)
	h.gcfg.BindAddr = ms.LocalNode().Addr
	if hc.seed == "" {
		hc.seed = ms.LocalNode().Addr
	}
	n, err := node.New(node.Config{ID: id, Runtime: hc.rt, Events: ms, Transport: tr, Logger: testLogger(),
		FeedInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	g, err := node.RegisterDelta(context.Background(), n, dstatetest.GaugesState{},
		node.StateOptions[dstatetest.Gauges]{Initial: dstatetest.NewGauges()})
	require.NoError(t, err)
	h.ms, h.n, h.g, h.alive = ms, n, g, true
	return h
}

// stop stops a host; graceful leaves the cluster first, otherwise it is a
// crash as far as the others know.
func (hc *hostCluster) stop(h *host, graceful bool) {
	if !h.alive {
		return
	}
	h.alive = false
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(hc.t, h.n.Close(ctx))
	if graceful {
		require.NoError(hc.t, h.ms.Close(ctx))
	} else {
		require.NoError(hc.t, h.ms.Shutdown())
	}
}

// sees reports whether observer holds owner's gauges at key = v.
func sees(obs *host, owner dstate.NodeID, key string, v int64) bool {
	view, ok := obs.g.Views().Get(owner)
	return ok && !view.Generation.IsZero() && view.Value[key] == v
}

func (hc *hostCluster) converge(what string, key string, want map[dstate.NodeID]int64) {
	hc.t.Helper()
	for obsID, obs := range hc.hosts {
		for owner, v := range want {
			if owner == obsID {
				continue
			}
			eventually(hc.t, what+": "+string(obsID)+" sees "+string(owner)+"'s "+key, func() bool {
				return sees(obs, owner, key, v)
			})
		}
	}
}

func TestHostsDiscoverReplicateAndSurviveARestart(t *testing.T) {
	skipShort(t)
	require.Equal(t, node.TransportTag, serfevents.TagTransport, "the host reads the tag serfevents writes")
	hc := newHostCluster(t)
	ids := []dstate.NodeID{"n1", "n2", "n3"}
	for _, id := range ids {
		hc.start(id)
	}
	ctx := ctxT(t)

	// Discovery from one seed, then replication of deltas.
	for _, id := range ids {
		h := hc.hosts[id]
		eventually(t, string(id)+" has two peers", func() bool { return len(h.n.Members()) == 2 })
	}
	want := map[dstate.NodeID]int64{}
	for i, id := range ids {
		for v := range int64(5) {
			_, _, err := hc.hosts[id].g.MutateDelta(ctx, dstatetest.Set("cpu", 10*int64(i)+v))
			require.NoError(t, err)
		}
		want[id] = 10*int64(i) + 4
	}
	hc.converge("first round", "cpu", want)
	old, ok := hc.hosts["n1"].g.Views().Get("n3")
	require.True(t, ok)
	oldGen := old.Generation

	// n3 crashes; the others learn it failed and keep going.
	hc.stop(hc.hosts["n3"], false)
	_, _, err := hc.hosts["n1"].g.MutateDelta(ctx, dstatetest.Set("cpu", 100))
	require.NoError(t, err)
	eventually(t, "n2 sees n1's cpu=100", func() bool { return sees(hc.hosts["n2"], "n1", "cpu", 100) })
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" sees n3 failed", func() bool {
			return statusOf(hc.hosts[obs].ms, "n3") == serfevents.StatusFailed
		})
	}

	// n3 restarts under the same name with an empty state (a new
	// incarnation) on a new transport port; everyone converges again.
	h3 := hc.start("n3")
	eventually(t, "n3 has two peers again", func() bool { return len(h3.n.Members()) == 2 })
	_, _, err = h3.g.MutateDelta(ctx, dstatetest.Set("mem", 7))
	require.NoError(t, err)
	_, _, err = hc.hosts["n2"].g.MutateDelta(ctx, dstatetest.Set("cpu", 200))
	require.NoError(t, err)
	hc.converge("after the restart", "cpu", map[dstate.NodeID]int64{"n1": 100, "n2": 200})
	hc.converge("after the restart", "mem", map[dstate.NodeID]int64{"n3": 7})
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		v, ok := hc.hosts[obs].g.Views().Get("n3")
		require.True(t, ok)
		require.Greater(t, v.Generation.Incarnation, oldGen.Incarnation, "%s holds n3's new incarnation", obs)
		require.NotContains(t, v.Value, "cpu", "%s dropped n3's old incarnation", obs)
	}
}
