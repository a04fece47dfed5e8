package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// startLiveAgent starts a single-node agent (a Raft server bootstrapping
// itself) on free loopback ports, changed by mutate, and stops it when the
// test ends.
func startLiveAgent(t *testing.T, id string, mutate func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := agent.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.Fast, cfg.BootstrapExpect, cfg.LogLevel = id, t.TempDir(), true, 1, "error"
	cfg.SerfAddr, cfg.TransportAddr, cfg.RaftAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	mutate(&cfg)
	a, err := agent.Start(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, a.Stop(ctx))
	})
	return a
}

// TestCommandsAgainstARealAgent runs the commands in-process against a
// real single-node agent (serf, transport, Raft and the admin API on
// loopback), where the golden tests use a fake.
func TestCommandsAgainstARealAgent(t *testing.T) {
	a := startLiveAgent(t, "live", func(cfg *agent.Config) { cfg.AdminToken = "tok" })
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(append([]string{"dstatectl", "--addr", a.HTTPAddr(), "--token", "tok"}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := run("members")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "live")
	require.Contains(t, out, "alive")

	code, _, errOut = run("put", "greeting", "hello")
	require.Equal(t, 0, code, errOut)
	code, out, errOut = run("--format", "json", "get", "greeting")
	require.Equal(t, 0, code, errOut)
	var v agent.KVValue
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	require.Equal(t, "hello", v.Value)

	require.Eventually(t, func() bool {
		code, _, _ := run("put", "--state", "durable-kv", "color", "blue")
		return code == 0
	}, 20*time.Second, 50*time.Millisecond, "durable-kv becomes writable once Raft has a leader")
	code, out, errOut = run("--format", "json", "dump", "--consistent", "durable-kv")
	require.Equal(t, 0, code, errOut)
	var d agent.StateDump
	require.NoError(t, json.Unmarshal([]byte(out), &d), out)
	require.Equal(t, "linearizable", d.Consistency)
	require.Len(t, d.Views, 1)
	require.Equal(t, map[string]any{"color": "blue"}, d.Views[0].Value)

	code, out, errOut = run("raft", "peers")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "live")

	code, _, errOut = run("health")
	require.Equal(t, 0, code, errOut)

	var bad bytes.Buffer
	code = Main([]string{"dstatectl", "--addr", a.HTTPAddr(), "--token", "nope", "members"}, &bytes.Buffer{}, &bad)
	require.Equal(t, 1, code)
	require.True(t, strings.Contains(bad.String(), "refused the token"), bad.String())
}
