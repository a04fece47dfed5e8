package raftpersist

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TestProbeChecksTheHandshakeAndTheIdentity probes servers of a mutual TLS
// cluster: one of the cluster answers; a server whose certificate comes
// from another CA, a wrong node ID at a real server's address and a closed
// port do not, each with its reason.
func TestProbeChecksTheHandshakeAndTheIdentity(t *testing.T) {
	ca := newTestCA(t)
	c := newCluster(t, 2, func(i int, cfg *Config) { cfg.TLS = ca.config(t, fmt.Sprint("n", i)) })
	c.leader()

	other := newTestCA(t)
	ln := listen(t, "127.0.0.1:0")
	ocfg := fastConfig("n9", filepath.Join(t.TempDir(), "n9"), ln)
	ocfg.TLS = other.config(t, "n9")
	stranger, err := New(ocfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = stranger.Close() })

	n0, n1 := c.node(0), c.node(1)
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, n0.Probe(ctx, "n1", n1.Addr()), "a server of the same CA answers")

	err = n0.Probe(ctx, "n9", stranger.Addr())
	require.ErrorContains(t, err, "certificate", "a server whose certificate another CA signed")
	err = stranger.Probe(ctx, "n0", n0.Addr())
	require.ErrorContains(t, err, "certificate", "a server that refuses our certificate")

	err = n0.Probe(ctx, "n7", n1.Addr())
	require.ErrorContains(t, err, `"n7"`, "a server answering for another node ID")

	closed := listen(t, "127.0.0.1:0")
	addr := closed.Addr().String()
	require.NoError(t, closed.Close())
	err = n0.Probe(ctx, "n5", addr)
	require.ErrorContains(t, err, "dial", "nothing listens")

	require.Error(t, n0.Probe(ctx, "", addr))
}

// TestStatsNameAServerThatStoppedAnswering stops a follower: the leader's
// statistics carry the error and, instead of "just now", the time since
// its heartbeats last reached the follower.
func TestStatsNameAServerThatStoppedAnswering(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	f := (l + 1) % 3
	gone := dstate.NodeID(fmt.Sprint("n", f))
	c.stop(f)
	leader := c.node(l)
	var got PeerStats
	eventually(t, 10*time.Second, func() bool {
		cs, err := leader.Stats(context.Background())
		if err != nil {
			return false
		}
		for _, p := range cs.Peers {
			if p.ID == gone {
				got = p
			}
		}
		return got.Err != "" && got.LastContact > 0
	}, "the leader's stats name %s as unreachable with its last contact", gone)
}
