package agent_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/raftpersist"
)

func requireBoundPort(t *testing.T, addr string) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err, addr)
	p, err := strconv.Atoi(port)
	require.NoError(t, err, addr)
	require.NotZero(t, p, addr)
}

// Three agents from LocalConfig in one process: node 2 and 3 join node 1,
// started on port 0, through its Addrs, and WaitReady returns once each has
// joined and knows the Raft leader.
func TestLocalConfigThreeNodes(t *testing.T) {
	var first *agent.Agent
	for _, id := range []string{"n1", "n2", "n3"} {
		cfg := agent.LocalConfig(t.TempDir())
		cfg.NodeID, cfg.LogLevel = id, "error"
		if first != nil {
			cfg.Join, cfg.BootstrapExpect = []string{first.Addrs().Serf}, 0
		}
		a := startAgent(t, cfg)
		ad := a.Addrs()
		for _, addr := range []string{ad.Serf, ad.Transport, ad.Raft, ad.HTTP} {
			requireBoundPort(t, addr)
		}
		require.Equal(t, a.HTTPAddr(), ad.HTTP)
		require.Equal(t, a.TransportAddr(), ad.Transport)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		require.NoError(t, a.WaitReady(ctx))
		cancel()
		st, err := a.RaftStatus(context.Background())
		require.NoError(t, err)
		require.Equal(t, "n1", st.Leader)
		if first == nil {
			first = a
		}
	}
	require.Len(t, first.Members(), 3)
}

func TestLocalConfigIsValid(t *testing.T) {
	dir := t.TempDir()
	cfg := agent.LocalConfig(dir)
	require.NoError(t, cfg.Validate())
	require.Equal(t, dir, cfg.DataDir)
	require.NotEmpty(t, cfg.NodeID)
	require.True(t, cfg.Fast)
	require.Equal(t, 1, cfg.BootstrapExpect)
}

// A server that is not bootstrapped never learns a leader: WaitReady ends
// with the context, saying why; registering a Raft state waits for a
// leader and, once the server bootstraps, succeeds.
func TestRaftStateRegistrationWaitsForALeader(t *testing.T) {
	cfg := agent.LocalConfig(t.TempDir())
	cfg.BootstrapExpect, cfg.LogLevel = 0, "error"
	a := startAgent(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := a.WaitReady(ctx)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "no Raft leader known")

	sc := dstate.DefaultStateConfig()
	sc.Durability = dstate.Raft
	opts := node.StateOptions[dstatetest.Counter]{Config: sc}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = agent.Register(ctx, a, dstatetest.CounterState{}, opts)
	cancel()
	require.ErrorIs(t, err, raftpersist.ErrNoLeader)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, `agent: register "counter": no Raft leader yet`)

	done := make(chan error, 1)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		s, err := agent.Register(ctx, a, dstatetest.CounterState{}, opts)
		if err == nil {
			_, _, err = s.Mutate(ctx, func(c *dstatetest.Counter) { c.Count++ })
		}
		done <- err
	}()
	c := apiClient{t: t, base: "http://" + a.Addrs().HTTP}
	code, body := c.call("POST", "/v1/raft/bootstrap", "{}")
	require.Equal(t, 200, code, body)
	require.NoError(t, <-done)
	require.NoError(t, a.WaitReady(ctx))
}

// An application's runtime, passed with WithRuntime, runs the agent's
// states; the agent does not close it.
func TestWithRuntime(t *testing.T) {
	rt, err := gosched.New(gosched.DefaultConfig())
	require.NoError(t, err)
	defer rt.Close()
	cfg := agent.LocalConfig(t.TempDir())
	cfg.LogLevel = "error"
	a, err := agent.Start(context.Background(), cfg, agent.WithRuntime(rt))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, a.WaitReady(ctx))
	require.NotZero(t, rt.Stats().MessagesProcessed, "the agent's states run on the runtime given")
	_, err = a.WriteKV(ctx, agent.DurableKVState, agent.KVChange{Key: "k", Value: "v"})
	require.NoError(t, err)
	require.NoError(t, a.Stop(ctx))

	// Still open: the application closes it.
	ref, err := rt.Spawn("after-stop", func(any) {})
	require.NoError(t, err)
	require.NoError(t, ref.Send("hello"))
}
