package agent_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dstate-go/dstate/pkg/agent"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-metrics' global sink and its aggregation goroutine live for the
		// process; bbolt and serf leave none.
		goleak.IgnoreTopFunction("github.com/armon/go-metrics.(*InmemSink).run"),
		goleak.IgnoreAnyFunction("github.com/hashicorp/go-metrics.(*Metrics).collectStats"),
		goleak.IgnoreAnyFunction("github.com/armon/go-metrics.(*Metrics).collectStats"),
		// A raft future still queued when raft shut down is never resolved
		// (see pkg/raftpersist's TestMain).
		goleak.IgnoreTopFunction("github.com/hashicorp/raft.(*deferError).Error"),
	)
}

// testConfig is a single-node server on free loopback ports.
func testConfig(t *testing.T, id string) agent.Config {
	c := agent.DefaultConfig()
	c.NodeID, c.DataDir, c.Fast = id, t.TempDir(), true
	c.SerfAddr, c.TransportAddr, c.RaftAddr, c.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.BootstrapExpect = 1
	c.LogLevel = "error"
	c.LoadInterval = agent.Duration(100 * time.Millisecond)
	return c
}

func startAgent(t *testing.T, cfg agent.Config, opts ...agent.Option) *agent.Agent {
	t.Helper()
	a, err := agent.Start(context.Background(), cfg, opts...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, a.Stop(ctx))
	})
	return a
}

type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c apiClient) call(method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, string(b)
}

func (c apiClient) json(method, path, body string, out any) {
	c.t.Helper()
	code, text := c.call(method, path, body)
	require.Equal(c.t, http.StatusOK, code, "%s %s: %s", method, path, text)
	require.NoError(c.t, json.Unmarshal([]byte(text), out), text)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, 20*time.Millisecond, what)
}

func TestSingleNodeAdminAPI(t *testing.T) {
	a := startAgent(t, testConfig(t, "solo"))
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}

	var ms []agent.Member
	c.json("GET", "/v1/members", "", &ms)
	require.Len(t, ms, 1)
	require.Equal(t, "solo", ms[0].Name)
	require.Equal(t, "alive", ms[0].Status)

	var st agent.RaftStatus
	eventually(t, "a leader", func() bool { c.json("GET", "/v1/raft", "", &st); return st.Leader == "solo" })
	require.True(t, st.Enabled)
	eventually(t, "durable-kv ready", func() bool { code, _ := c.call("GET", "/v1/kv/x?state=durable-kv", ""); return code == 200 })

	var states []agent.StateInfo
	c.json("GET", "/v1/states", "", &states)
	names := []string{}
	for _, s := range states {
		names = append(names, s.Name+"/"+s.Durability)
	}
	require.Equal(t, []string{"durable-kv/raft", "kv/local", "load/memory"}, names)

	var w agent.WriteResult
	c.json("PUT", "/v1/kv/greeting", "hello", &w)
	require.Equal(t, "greeting", w.Key)
	var v agent.KVValue
	c.json("GET", "/v1/kv/greeting", "", &v)
	require.Equal(t, agent.KVValue{State: "kv", Node: "solo", Key: "greeting", Value: "hello", Found: true, Generation: w.Generation}, v)

	c.json("PUT", "/v1/kv/color?state=durable-kv", "blue", &w)
	var d agent.StateDump
	c.json("GET", "/v1/states/durable-kv?consistent=true", "", &d)
	require.Equal(t, "linearizable", d.Consistency)
	require.Len(t, d.Views, 1)
	require.Equal(t, map[string]any{"color": "blue"}, d.Views[0].Value)
	require.Equal(t, w.Generation, d.Views[0].Generation)

	c.json("DELETE", "/v1/kv/greeting", "", &w)
	c.json("GET", "/v1/kv/greeting", "", &v)
	require.False(t, v.Found)

	var h agent.Health
	c.json("GET", "/v1/health", "", &h)
	require.Equal(t, "healthy", h.Status)
	require.Len(t, h.States, 3)

	code, metrics := c.call("GET", "/metrics", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metrics, `dstate_sync_total{counter="mutations",state="kv"} 2`)
	require.Contains(t, metrics, "dstate_transport_sent_frames_total")
	require.Contains(t, metrics, "dstate_node_delta_runs_total")
	require.Contains(t, metrics, "dstate_node_deltas_in_runs_total")
	require.Contains(t, metrics, "dstate_raft_", "raft's own metrics reach /metrics")
}

func TestAdminAPIRejectsBadRequests(t *testing.T) {
	a := startAgent(t, testConfig(t, "solo"))
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	cases := []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"GET", "/v1/health?max_staleness=soon", "", 400, `max_staleness="soon" is not a duration`},
		{"GET", "/v1/states/nope", "", 404, "nope"},
		{"GET", "/v1/states/kv?consistent=maybe", "", 400, `consistent="maybe" is not true or false`},
		{"GET", "/v1/states/kv?consistent=true", "", 400, "a consistent read needs a Raft-durable state"},
		{"PUT", "/v1/kv/x?state=load", "v", 400, `state "load" is not a kv state`},
		{"GET", "/v1/kv/x?node=ghost", "", 404, `no view of node "ghost"`},
		{"POST", "/v1/join", "{not json", 400, `join: body: want {"addrs": [...]}: not JSON at byte 2`},
		{"POST", "/v1/join", `{"addrs": []}`, 400, "addrs is empty"},
		{"POST", "/v1/join", `{"adrs": ["x"]}`, 400, `unknown field "adrs"`},
		{"POST", "/v1/keyring/rotate", `{"key": "x"}`, 404, `"rotate" is not install, use or remove`},
		{"POST", "/v1/keyring/install", `{"key": "x"}`, 409, "not enabled"},
		{"GET", "/v1/nothing", "", 404, "no endpoint GET /v1/nothing"},
		{"PATCH", "/v1/kv/x", "", 405, "PATCH /v1/kv/x: method not allowed (allowed: DELETE, GET, HEAD, PUT)"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, body := c.call(tc.method, tc.path, tc.body)
			require.Equal(t, tc.code, code, body)
			if tc.msg != "" {
				var e agent.APIError
				require.NoError(t, json.Unmarshal([]byte(body), &e), body)
				require.Contains(t, e.Error, tc.msg)
			}
		})
	}
}

func TestAdminTokenIsRequired(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.AdminToken = "s3cret"
	a := startAgent(t, cfg)
	base := "http://" + a.HTTPAddr()
	for _, tc := range []struct {
		token, msg string
		code       int
	}{
		{"", "missing bearer token", 401},
		{"wrong", "does not match", 401},
		{"s3cret", "", 200},
	} {
		code, body := apiClient{t: t, base: base, token: tc.token}.call("GET", "/v1/members", "")
		require.Equal(t, tc.code, code, body)
		require.Contains(t, body, tc.msg)
	}
}

func TestStartErrorsNameTheProblem(t *testing.T) {
	a := startAgent(t, testConfig(t, "first"))

	cfg := testConfig(t, "second")
	cfg.HTTPAddr = a.HTTPAddr()
	_, err := agent.Start(context.Background(), cfg)
	require.ErrorContains(t, err, "http_addr "+a.HTTPAddr())
	require.ErrorContains(t, err, "address already in use")

	cfg = testConfig(t, "third")
	cfg.DataDir = "/dev/null/data"
	_, err = agent.Start(context.Background(), cfg)
	require.ErrorContains(t, err, "data_dir /dev/null/data")

	cfg = testConfig(t, "third")
	cfg.NodeID = ""
	_, err = agent.Start(context.Background(), cfg)
	require.ErrorContains(t, err, "node_id: is empty")
}

func TestThreeAgentsReplicateAndSurviveARestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents")
	}
	var agents []*agent.Agent
	var cfgs []agent.Config
	for i, id := range []string{"a1", "a2", "a3"} {
		cfg := testConfig(t, id)
		cfg.BootstrapExpect = 3
		if i > 0 {
			cfg.Join = []string{agents[0].Members()[0].Addr}
		}
		a, err := agent.Start(context.Background(), cfg)
		require.NoError(t, err)
		agents, cfgs = append(agents, a), append(cfgs, cfg)
	}
	t.Cleanup(func() {
		for _, a := range agents {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_ = a.Stop(ctx)
			cancel()
		}
	})
	ctx := context.Background()
	eventually(t, "a leader", func() bool { st, _ := agents[1].RaftStatus(ctx); return st.Leader != "" && len(st.Peers) == 3 })
	eventually(t, "durable-kv ready on a3", func() bool { _, err := agents[2].GetKV(agent.DurableKVState, "a3", "d"); return err == nil })
	_, err := agents[0].WriteKV(ctx, agent.KVState, agent.KVChange{Key: "k", Value: "v1"})
	require.NoError(t, err)
	res, err := agents[2].WriteKV(ctx, agent.DurableKVState, agent.KVChange{Key: "d", Value: "durable"})
	require.NoError(t, err)
	eventually(t, "every agent holds a1's k", func() bool {
		for _, a := range agents {
			if v, err := a.GetKV(agent.KVState, "a1", "k"); err != nil || v.Value != "v1" {
				return false
			}
		}
		return true
	})

	// a3 stops hard (no leave) and comes back from its data dir.
	ctxStop, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, agents[2].Stop(ctxStop))
	cfg := cfgs[2]
	cfg.SerfAddr = "127.0.0.1:0"
	cfg.Join = []string{agents[0].Members()[0].Addr}
	a3, err := agent.Start(ctx, cfg)
	require.NoError(t, err)
	agents[2] = a3
	eventually(t, "durable-kv reloaded on a3", func() bool { _, err := a3.GetKV(agent.DurableKVState, "a3", "d"); return err == nil })
	v, err := a3.GetKV(agent.DurableKVState, "a3", "d")
	require.NoError(t, err)
	require.Equal(t, "durable", v.Value, "the Raft-durable state is restored")
	require.Equal(t, res.Generation, v.Generation, "at the generation acknowledged before the stop")
	_, err = agents[0].WriteKV(ctx, agent.KVState, agent.KVChange{Key: "k", Value: "v2"})
	require.NoError(t, err)
	eventually(t, "a3 catches up with a1", func() bool {
		v, err := a3.GetKV(agent.KVState, "a1", "k")
		return err == nil && v.Value == "v2"
	})
}
