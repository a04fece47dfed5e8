package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// startThree starts three servers with bootstrap-expect 3, waits for a
// leader and durable-kv on all, and stops what is still running at the end.
func startThree(t *testing.T) []*agent.Agent {
	t.Helper()
	var agents []*agent.Agent
	for i, id := range []string{"a1", "a2", "a3"} {
		cfg := testConfig(t, id)
		cfg.BootstrapExpect = 3
		if i > 0 {
			cfg.Join = []string{agents[0].Members()[0].Addr}
		}
		a, err := agent.Start(context.Background(), cfg)
		require.NoError(t, err)
		agents = append(agents, a)
	}
	t.Cleanup(func() {
		for _, a := range agents {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_ = a.Stop(ctx)
			cancel()
		}
	})
	ctx := context.Background()
	eventually(t, "a leader with three voters", func() bool {
		st, _ := agents[0].RaftStatus(ctx)
		return st.Leader != "" && len(st.Peers) == 3
	})
	for _, a := range agents {
		eventually(t, "durable-kv ready on "+a.ID(), func() bool {
			_, err := a.GetKV(agent.DurableKVState, a.ID(), "x")
			return err == nil
		})
	}
	return agents
}

// raftServers lists the servers of a's Raft configuration.
func raftServers(t *testing.T, a *agent.Agent) []string {
	t.Helper()
	st, err := a.RaftStatus(context.Background())
	require.NoError(t, err)
	var ids []string
	for _, p := range st.Peers {
		ids = append(ids, p.ID)
	}
	return ids
}

// TestStopLeavesTheRaftConfigurationOneByOne: two followers stop back to
// back; each Stop returns only once the server is out of the Raft
// configuration, so the last server keeps a leader and durable writes, and
// it stops without error as the last voter.
func TestStopLeavesTheRaftConfigurationOneByOne(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents")
	}
	agents := startThree(t)
	ctx := context.Background()
	st, err := agents[0].RaftStatus(ctx)
	require.NoError(t, err)
	var last *agent.Agent
	var followers []*agent.Agent
	for _, a := range agents {
		if a.ID() == st.Leader {
			last = a
		} else {
			followers = append(followers, a)
		}
	}
	require.NotNil(t, last)
	for _, f := range followers {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		require.NoError(t, f.Stop(sctx), "stop %s", f.ID())
		cancel()
		require.NotContains(t, raftServers(t, last), f.ID(), "%s is out of the configuration when Stop returns", f.ID())
	}
	require.Equal(t, []string{last.ID()}, raftServers(t, last))
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = last.WriteKV(wctx, agent.DurableKVState, agent.KVChange{Key: "k", Value: "alone"})
	require.NoError(t, err, "a durable write on the last server")
	sctx, cancel2 := context.WithTimeout(ctx, 20*time.Second)
	defer cancel2()
	require.NoError(t, last.Stop(sctx), "the last voter stops without error")
}

// TestLeaveAPIAnswersOnceOutOfTheConfiguration: POST /v1/leave on the
// leader answers after it handed leadership over and left the Raft
// configuration; the others then lead a configuration of two.
func TestLeaveAPIAnswersOnceOutOfTheConfiguration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents")
	}
	agents := startThree(t)
	ctx := context.Background()
	st, err := agents[0].RaftStatus(ctx)
	require.NoError(t, err)
	var leader *agent.Agent
	var others []*agent.Agent
	for _, a := range agents {
		if a.ID() == st.Leader {
			leader = a
		} else {
			others = append(others, a)
		}
	}
	c := apiClient{t: t, base: "http://" + leader.HTTPAddr()}
	var res agent.LeaveResult
	c.json(http.MethodPost, "/v1/leave", "", &res)
	require.Equal(t, agent.LeaveRaftRemoved, res.Raft)
	require.True(t, res.Transferred, "the leader handed leadership over")
	// The removal is committed when the answer comes: the new leader's
	// configuration no longer holds the old one. The other follower may
	// hear of it a heartbeat later (the entry was committed through the
	// new leader and the leaving node).
	left := func(o *agent.Agent) bool { return !slices.Contains(raftServers(t, o), leader.ID()) }
	require.True(t, left(others[0]) || left(others[1]), "neither remaining server's configuration dropped %s when the answer came", leader.ID())
	for _, o := range others {
		eventually(t, o.ID()+"'s configuration without "+leader.ID(), func() bool { return left(o) })
	}
	select {
	case <-leader.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not stop after leaving")
	}
	eventually(t, "a new leader among the others", func() bool {
		st, _ := others[0].RaftStatus(ctx)
		return st.Leader != "" && st.Leader != leader.ID()
	})
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = others[0].WriteKV(wctx, agent.DurableKVState, agent.KVChange{Key: "k", Value: "after"})
	require.NoError(t, err)
}

// TestLeaveAPIOfTheLastVoter: a single server answers that it stays in the
// configuration as the last voter.
func TestLeaveAPIOfTheLastVoter(t *testing.T) {
	a, err := agent.Start(context.Background(), testConfig(t, "solo"))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	eventually(t, "a leader", func() bool { st, _ := a.RaftStatus(context.Background()); return st.Leader == "solo" })
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	code, body := c.call(http.MethodPost, "/v1/leave", "")
	require.Equal(t, http.StatusOK, code, body)
	var res agent.LeaveResult
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	require.Equal(t, agent.LeaveRaftLastVoter, res.Raft)
	<-a.Done()
}
