package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// health fetches GET /v1/health whatever its status (503 carries the
// report too) and returns the status with the report.
func (c apiClient) health(query string) (int, agent.Health) {
	c.t.Helper()
	code, text := c.call("GET", "/v1/health"+query, "")
	var h agent.Health
	require.NoError(c.t, json.Unmarshal([]byte(text), &h), text)
	return code, h
}

// TestProbesOfARaftServer: a server whose Raft group has no leader yet is
// live (200) but not ready (503, naming the missing leader), and its full
// report is unhealthy with HTTP 503 and a leaderless Raft section. Once
// the group is bootstrapped, ready answers 200 and the report is healthy
// with the leader, its term and the voters. A stopped agent is neither
// live nor ready.
func TestProbesOfARaftServer(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.BootstrapExpect = 0 // no leader until bootstrapped
	a := startAgent(t, cfg)
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}

	code, text := c.call("GET", "/v1/health/live", "")
	require.Equal(t, http.StatusOK, code, text)
	var live agent.Liveness
	require.NoError(t, json.Unmarshal([]byte(text), &live))
	require.Equal(t, agent.Liveness{Node: "solo", Live: true}, live)

	code, text = c.call("GET", "/v1/health/ready", "")
	require.Equal(t, http.StatusServiceUnavailable, code, text)
	var rd agent.Readiness
	require.NoError(t, json.Unmarshal([]byte(text), &rd))
	require.False(t, rd.Ready)
	require.Contains(t, rd.Reasons, "durable-kv is not loaded: it waits for the Raft cluster to elect a leader and load it")
	require.Contains(t, text, "no Raft leader known")

	code, h := c.health("")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, agent.StatusUnhealthy, h.Status)
	require.False(t, h.Ready)
	require.Equal(t, rd.Reasons, h.Reasons)
	require.NotNil(t, h.Raft)
	require.Empty(t, h.Raft.Leader)

	_, err := a.Bootstrap(context.Background(), nil)
	require.NoError(t, err)
	eventually(t, "ready once a leader is elected and durable-kv loaded", func() bool {
		code, _ := c.call("GET", "/v1/health/ready", "")
		return code == http.StatusOK
	})
	code, h = c.health("")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, agent.StatusHealthy, h.Status)
	require.True(t, h.Ready)
	require.Empty(t, h.Reasons)
	require.Equal(t, "solo", h.Raft.Leader)
	require.Equal(t, "leader", h.Raft.State)
	require.Equal(t, []string{"solo"}, h.Raft.Voters)
	require.Positive(t, h.Raft.Term)
	require.Zero(t, h.Raft.LastContactMs)
	names := []string{}
	for _, s := range h.States {
		names = append(names, s.State)
	}
	require.Equal(t, []string{"durable-kv", "kv", "load"}, names)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, a.Stop(ctx))
	require.Equal(t, agent.Liveness{Node: "solo", Reason: "the agent is stopping"}, a.Live())
	require.False(t, a.Ready().Ready)
}

// TestProbesOfANonServer: an agent without Raft is ready as soon as it
// serves, and its report has no Raft section.
func TestProbesOfANonServer(t *testing.T) {
	cfg := testConfig(t, "client")
	cfg.Server, cfg.BootstrapExpect = false, 0
	a := startAgent(t, cfg)
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	code, text := c.call("GET", "/v1/health/ready", "")
	require.Equal(t, http.StatusOK, code, text)
	code, h := c.health("")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, agent.StatusHealthy, h.Status)
	require.Nil(t, h.Raft)
}

// TestHealthCountsEachPeerOnceAndNamesIt: a3 of three servers stops
// sending state frames to the others (Raft and gossip still flow). On a1
// every state reports a3 stale by name once its view missed the state's
// sync schedule; after a kv query leaves a pull to a3 unanswered, kv
// reports it failing instead, not both: every state counts two peers. One
// bad peer of two leaves a1 degraded, ready, with HTTP 200.
func TestHealthCountsEachPeerOnceAndNamesIt(t *testing.T) {
	var agents []*agent.Agent
	for i, id := range []string{"a1", "a2", "a3"} {
		cfg := testConfig(t, id)
		cfg.BootstrapExpect = 3
		if i > 0 {
			cfg.Join = []string{agents[0].Members()[0].Addr}
		}
		agents = append(agents, startAgent(t, cfg, agent.WithTestHooks(agent.TestHooks{Faults: true})))
	}
	c1 := apiClient{t: t, base: "http://" + agents[0].HTTPAddr()}
	eventually(t, "a1 healthy with two peers in every state", func() bool {
		code, h := c1.health("")
		if code != http.StatusOK || h.Status != agent.StatusHealthy || len(h.States) != 3 {
			return false
		}
		for _, s := range h.States {
			if s.HealthyPeers != 2 {
				return false
			}
		}
		return true
	})

	c3 := apiClient{t: t, base: "http://" + agents[2].HTTPAddr()}
	var st agent.FaultsStatus
	c3.json("POST", "/v1/test/faults", `{"drop": ["a1", "a2"]}`, &st)
	require.Equal(t, []string{"a1", "a2"}, st.Drop)

	eventually(t, "a1 names a3 stale in every state", func() bool {
		_, h := c1.health("")
		for _, s := range h.States {
			if len(s.Stale) != 1 || s.Stale[0].Node != "a3" {
				return false
			}
		}
		return true
	})
	var d agent.StateDump
	c1.json("GET", "/v1/states/kv?max_staleness=1ms", "", &d) // pulls a3, which cannot answer
	require.Contains(t, d.StalePeers, "a3")

	var h agent.Health
	var code int
	eventually(t, "a1 reports a3 failing in kv", func() bool {
		code, h = c1.health("")
		for _, s := range h.States {
			if s.State == agent.KVState {
				return len(s.Failing) == 1
			}
		}
		return false
	})
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, agent.StatusDegraded, h.Status)
	require.True(t, h.Ready)
	for _, s := range h.States {
		require.Equal(t, 2, s.HealthyPeers+s.StalePeers+s.FailingPeers, "%+v", s)
		require.Equal(t, 1, s.HealthyPeers, "%+v", s)
		require.Equal(t, agent.StatusDegraded, s.Status, "%+v", s)
		require.Equal(t, len(s.Stale), s.StalePeers)
		require.Equal(t, len(s.Failing), s.FailingPeers)
		bad := append(append([]agent.PeerHealth{}, s.Stale...), s.Failing...)
		require.Len(t, bad, 1, "%+v", s)
		require.Equal(t, "a3", bad[0].Node)
		require.NotEmpty(t, bad[0].Reason)
		if s.State == agent.KVState {
			require.Contains(t, s.Failing[0].Reason, "answered no snapshot request")
		} else {
			require.Contains(t, s.Stale[0].Reason, "not renewed")
		}
	}
}

// TestPublicProbesSkipTheToken: with http_public_probes, GET and HEAD of
// the probes and /metrics need no token while every other endpoint
// still does; without it, the probes need the token too.
func TestPublicProbesSkipTheToken(t *testing.T) {
	for _, public := range []bool{false, true} {
		cfg := testConfig(t, "solo")
		cfg.AdminToken, cfg.HTTPPublicProbes = "s3cret-token", public
		a := startAgent(t, cfg)
		anon := apiClient{t: t, base: "http://" + a.HTTPAddr()}
		authed := apiClient{t: t, base: anon.base, token: cfg.AdminToken}
		eventually(t, "ready", func() bool { code, _ := authed.call("GET", "/v1/health/ready", ""); return code == http.StatusOK })

		for _, path := range []string{"/v1/health/live", "/v1/health/ready", "/metrics"} {
			want := http.StatusUnauthorized
			if public {
				want = http.StatusOK
			}
			code, text := anon.call("GET", path, "")
			require.Equal(t, want, code, "GET %s public=%v: %s", path, public, text)
			code, _ = anon.call("HEAD", path, "")
			require.Equal(t, want, code, "HEAD %s public=%v", path, public)
			code, _ = authed.call("GET", path, "")
			require.Equal(t, http.StatusOK, code, "GET %s with the token", path)
		}
		for _, r := range [][2]string{{"GET", "/v1/health"}, {"GET", "/v1/members"}, {"GET", "/v1/kv/x"}, {"POST", "/v1/health/live"}, {"GET", "/v1/health/live/"}} {
			code, text := anon.call(r[0], r[1], "")
			require.Equal(t, http.StatusUnauthorized, code, "%s %s public=%v: %s", r[0], r[1], public, text)
		}
	}
}
