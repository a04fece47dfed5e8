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

// serverIDs lists the IDs of s's latest configuration.
func serverIDs(t testing.TB, s *Store) []dstate.NodeID {
	t.Helper()
	servers, err := s.Servers()
	require.NoError(t, err)
	var out []dstate.NodeID
	for _, srv := range servers {
		out = append(out, srv.ID)
	}
	return out
}

// TestLeaveOneByOneKeepsQuorum: two followers leave and stop back to back;
// the last server leads a configuration of one and commits saves, and it
// refuses to leave as the last voter.
func TestLeaveOneByOneKeepsQuorum(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	ctx := ctxT(t, 20*time.Second)
	p := stateOf(c.node(l), "s")
	require.NoError(t, p.Save(ctx, obj(1, 1, "three"), nil))

	gone := 0
	for i := range 3 {
		if i == l {
			continue
		}
		res, err := c.node(i).Leave(ctx)
		require.NoError(t, err, "n%d leaves", i)
		require.True(t, res.Removed, "n%d was in the configuration", i)
		require.False(t, res.Transferred, "n%d is a follower", i)
		// Leave returned: the leader's configuration no longer counts it,
		// so stopping it at once keeps the quorum.
		require.NotContains(t, serverIDs(t, c.node(l)), c.node(i).ID())
		c.stop(i)
		gone++
		require.NoError(t, p.Save(ctx, obj(1, uint64(1+gone), fmt.Sprintf("after %d left", gone)), nil), "a save after n%d left", i)
	}
	require.Equal(t, []dstate.NodeID{c.node(l).ID()}, serverIDs(t, c.node(l)))
	got, err := p.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "after 2 left", got.Value)

	_, err = c.node(l).Leave(ctx)
	require.ErrorIs(t, err, ErrLastVoter)
	require.True(t, c.node(l).IsLeader(), "the last voter still leads")
}

// TestLeaveLeaderHandsOver: a leader that leaves hands leadership to
// another voter first; the others keep a leader and commit saves after it
// stopped.
func TestLeaveLeaderHandsOver(t *testing.T) {
	c := newCluster(t, 3, anyOwner)
	l := c.leader()
	ctx := ctxT(t, 20*time.Second)
	res, err := c.node(l).Leave(ctx)
	require.NoError(t, err)
	require.True(t, res.Removed)
	require.True(t, res.Transferred, "the leader hands leadership over")
	c.stop(l)
	nl := c.leader()
	require.NotEqual(t, l, nl)
	require.Len(t, serverIDs(t, c.node(nl)), 2)
	for i := range 3 {
		if s := c.node(i); s != nil {
			require.NoError(t, stateOf(s, "s").Save(ctx, obj(1, uint64(i+1), "after the leader left"), nil), "save on n%d", i)
		}
	}
}

// TestLeaveWithoutQuorumFails: a server whose peers are gone cannot be
// removed; Leave says so when its context ends and the server stays in the
// configuration.
func TestLeaveWithoutQuorumFails(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	f := (l + 1) % 3
	for i := range 3 {
		if i != f {
			c.stop(i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.node(f).Leave(ctx)
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrLastVoter), "three voters in the configuration: %v", err)
	require.ErrorContains(t, err, "is still in the raft configuration")
	require.Contains(t, serverIDs(t, c.node(f)), c.node(f).ID())
}

// resolver is a table of current raft addresses by node ID, as the agent's
// gossip tags provide them.
type resolver struct {
	mu    sync.Mutex
	addrs map[dstate.NodeID]string
}

func (r *resolver) set(id dstate.NodeID, addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs[id] = addr
}

func (r *resolver) resolve(id dstate.NodeID) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.addrs[id]
	return a, ok
}

// TestRestartAllOnNewAddresses: every server of a cluster stops and starts
// again on a new address; with ResolveServer giving the new addresses by
// ID they elect a leader, the leader writes the new addresses into the
// configuration, and the saves made before are loaded.
func TestRestartAllOnNewAddresses(t *testing.T) {
	r := &resolver{addrs: map[dstate.NodeID]string{}}
	c := newCluster(t, 3, func(_ int, cfg *Config) { cfg.ResolveServer = r.resolve })
	c.leader()
	ctx := ctxT(t, 30*time.Second)
	for i := range 3 {
		require.NoError(t, stateOf(c.node(i), "s").Save(ctx, obj(1, 1, fmt.Sprintf("v%d", i)), nil))
	}
	c.closeAll()

	stores := make([]*Store, 3)
	for i := range 3 {
		cfg := c.cfgs[i]
		cfg.Listener = listen(t, "127.0.0.1:0")
		r.set(cfg.NodeID, cfg.Listener.Addr().String())
		s, err := New(cfg)
		require.NoError(t, err)
		c.mu.Lock()
		c.nodes[i] = s
		c.mu.Unlock()
		stores[i] = s
	}
	nl := c.node(c.leader())
	for i, s := range stores {
		require.NoError(t, nl.AddVoter(ctx, s.ID(), s.Addr()), "update n%d's address", i)
	}
	servers, err := nl.Servers()
	require.NoError(t, err)
	require.Len(t, servers, 3)
	for _, srv := range servers {
		want, _ := r.resolve(srv.ID)
		require.Equal(t, want, srv.Address, "configured address of %s", srv.ID)
	}
	for i, s := range stores {
		got, err := stateOf(s, "s").Load(ctx)
		require.NoError(t, err, "load on n%d", i)
		require.Equal(t, fmt.Sprintf("v%d", i), got.Value)
	}
}
