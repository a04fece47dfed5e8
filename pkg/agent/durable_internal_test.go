package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// durableConfig is a fast server on free loopback ports.
func durableConfig(t *testing.T, id string, expect int) Config {
	c := DefaultConfig()
	c.NodeID, c.DataDir, c.Fast, c.BootstrapExpect, c.LogLevel = id, t.TempDir(), true, expect, "error"
	c.SerfAddr, c.TransportAddr, c.RaftAddr, c.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.LoadInterval = Duration(100 * time.Millisecond)
	c.LeaveTimeout = Duration(time.Second) // a survivor without a quorum cannot leave
	return c
}

// putDurable writes key on a's durable-kv through its admin API, telling
// the agent the client waits 30 s, and returns the status and the message.
func putDurable(t *testing.T, a *Agent, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, "http://"+a.HTTPAddr()+"/v1/kv/"+key+"?state="+DurableKVState, strings.NewReader("v"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(TimeoutHeader, "30s")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var ae APIError
	_ = json.Unmarshal(b, &ae)
	return resp.StatusCode, ae.Error
}

// TestDurableKVBeforeALeaderSaysSo: a server waiting for bootstrap-expect
// answers durable-kv requests with 503 and "no Raft leader yet", the
// cause its registration found.
func TestDurableKVBeforeALeaderSaysSo(t *testing.T) {
	a, err := Start(context.Background(), durableConfig(t, "lonely", 3))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	var code int
	var msg string
	require.Eventually(t, func() bool {
		code, msg = putDurable(t, a, "k")
		return strings.Contains(msg, "no Raft leader yet")
	}, 20*time.Second, 20*time.Millisecond, "durable-kv names the missing leader")
	require.Equal(t, http.StatusServiceUnavailable, code, msg)
	_, err = a.GetKV(DurableKVState, "", "k")
	require.ErrorIs(t, err, errNotReady)
	require.ErrorContains(t, err, "no Raft leader yet")
}

// TestDurableKVLostQuorumSaysSo: two of three servers crash (no graceful
// leave, so they stay voters); a durable write on the survivor answers
// 503 naming the lost quorum, well before the 30 s the client waits.
func TestDurableKVLostQuorumSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents")
	}
	var agents []*Agent
	running := map[*Agent]bool{}
	t.Cleanup(func() {
		for _, a := range agents {
			if running[a] {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_ = a.Stop(ctx)
				cancel()
			}
		}
	})
	for i, id := range []string{"q1", "q2", "q3"} {
		cfg := durableConfig(t, id, 3)
		if i > 0 {
			cfg.Join = []string{agents[0].Members()[0].Addr}
		}
		a, err := Start(context.Background(), cfg)
		require.NoError(t, err)
		agents = append(agents, a)
		running[a] = true
	}
	for _, a := range agents {
		require.Eventually(t, func() bool { code, _ := putDurable(t, a, "warm"); return code == http.StatusOK },
			20*time.Second, 20*time.Millisecond, "durable-kv writable on %s", a.ID())
	}
	survivor := agents[0]
	for _, a := range agents[1:] {
		require.NoError(t, a.teardown(context.Background())) // a crash: it stays in the Raft configuration
		running[a] = false
	}
	start := time.Now()
	code, msg := putDurable(t, survivor, "k")
	t.Logf("answered in %s: %s", time.Since(start), msg)
	require.Equal(t, http.StatusServiceUnavailable, code, msg)
	require.Contains(t, msg, "lost quorum: 1 of 3 voters reachable")
}
