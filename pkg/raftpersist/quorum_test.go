package raftpersist

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// requireLostQuorum checks that err names a lost quorum with one of three
// voters reachable, and that it came before ctx ended.
func requireLostQuorum(t *testing.T, err error, unreachable ...dstate.NodeID) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, ErrNoQuorum)
	require.ErrorIs(t, err, ErrNoLeader)
	require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
	require.False(t, errors.Is(err, context.DeadlineExceeded), "the call waited for its context instead of naming the cause: %v", err)
	var qe *QuorumError
	require.ErrorAs(t, err, &qe)
	require.Equal(t, 3, qe.Voters)
	require.Equal(t, 1, qe.Reachable)
	require.ElementsMatch(t, unreachable, qe.Unreachable)
	require.ErrorContains(t, err, "lost quorum: 1 of 3 voters reachable")
}

// TestLostQuorumIsNamed: with two of three servers stopped, saves and
// linearizable reads on the survivor (a follower, then the old leader)
// fail with ErrNoQuorum naming how many voters answer, long before their
// context ends.
func TestLostQuorumIsNamed(t *testing.T) {
	for _, survivor := range []string{"follower", "leader"} {
		t.Run(survivor, func(t *testing.T) {
			c := newCluster(t, 3, nil)
			l := c.leader()
			keep := l
			if survivor == "follower" {
				keep = (l + 1) % 3
			}
			s := c.node(keep)
			require.NoError(t, s.SaveEnvelope(ctxT(t, 5*time.Second), *env("st", s.ID(), 1, 0, "a")))
			var gone []dstate.NodeID
			for i := range 3 {
				if i != keep {
					gone = append(gone, c.node(i).ID())
					c.stop(i)
				}
			}
			ctx := ctxT(t, 30*time.Second)
			err := s.SaveEnvelope(ctx, *env("st", s.ID(), 1, 1, "b"))
			requireLostQuorum(t, err, gone...)
			_, err = s.LoadEnvelope(ctx, "st", s.ID())
			requireLostQuorum(t, err, gone...)
			_, err = s.LoadAllEnvelopes(ctx, "st")
			requireLostQuorum(t, err, gone...)
			require.NoError(t, ctx.Err())
		})
	}
}

// TestQuorumBackAfterLoss: once a stopped server is back, the survivor's
// saves succeed again (the reachability check is not kept past a leader).
func TestQuorumBackAfterLoss(t *testing.T) {
	c := newCluster(t, 3, nil)
	f := c.follower()
	other := (f + 1) % 3
	for i := range 3 {
		if i != f {
			c.stop(i)
		}
	}
	s := c.node(f)
	requireLostQuorum(t, s.SaveEnvelope(ctxT(t, 30*time.Second), *env("st", s.ID(), 1, 0, "a")),
		c.cfgs[(f+1)%3].NodeID, c.cfgs[(f+2)%3].NodeID)
	c.restart(other)
	var err error
	eventually(t, 30*time.Second, func() bool {
		err = s.SaveEnvelope(ctxT(t, 30*time.Second), *env("st", s.ID(), 1, 0, "a"))
		return err == nil
	}, "a save on %s after %s is back (last error: %v)", s.ID(), c.cfgs[other].NodeID, err)
}

// TestNoLeaderBeforeBootstrap: a server not bootstrapped yet (waiting for
// bootstrap-expect) answers a save and a read at once with "no Raft
// leader yet", not when the context ends.
func TestNoLeaderBeforeBootstrap(t *testing.T) {
	cfg := fastConfig("solo", filepath.Join(t.TempDir(), "solo"), listen(t, "127.0.0.1:0"))
	cfg.BootstrapExpect = 3
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	ctx := ctxT(t, 30*time.Second)
	for _, err := range []error{
		s.SaveEnvelope(ctx, *env("st", "solo", 1, 0, "a")),
		func() error { _, err := s.LoadEnvelope(ctx, "st", "solo"); return err }(),
	} {
		require.ErrorIs(t, err, ErrNoLeader)
		require.False(t, errors.Is(err, ErrNoQuorum), "no configuration is no lost quorum: %v", err)
		require.False(t, errors.Is(err, context.DeadlineExceeded), "waited for the context: %v", err)
		require.ErrorContains(t, err, "no Raft leader yet")
		var qe *QuorumError
		require.ErrorAs(t, err, &qe)
		require.Zero(t, qe.Voters)
	}
	require.NoError(t, ctx.Err())
}

// TestQuorumErrorText: each case says what is known.
func TestQuorumErrorText(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  QuorumError
		want string
		lost bool
	}{
		{"no configuration", QuorumError{}, "no Raft leader yet: this server's raft configuration names no voter", false},
		{"lost", QuorumError{Voters: 3, Reachable: 1, Unreachable: []dstate.NodeID{"n2", "n3"}}, "lost quorum: 1 of 3 voters reachable, 2 needed (unreachable: n2, n3)", true},
		{"five, two", QuorumError{Voters: 5, Reachable: 2, Unreachable: []dstate.NodeID{"a", "b", "c"}}, "lost quorum: 2 of 5 voters reachable, 3 needed", true},
		{"election", QuorumError{Voters: 3, Reachable: 3}, "no Raft leader yet: 3 of 3 voters reachable, no leader elected", false},
		{"election, one down", QuorumError{Voters: 3, Reachable: 2, Unreachable: []dstate.NodeID{"n3"}}, "no Raft leader yet: 2 of 3 voters reachable (unreachable: n3)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := &tc.err
			require.Contains(t, err.Error(), tc.want)
			require.ErrorIs(t, err, ErrNoLeader)
			require.Equal(t, tc.lost, errors.Is(err, ErrNoQuorum), "got ErrNoQuorum %v, want %v", !tc.lost, tc.lost)
		})
	}
}
