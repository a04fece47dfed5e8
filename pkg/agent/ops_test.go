package agent_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// TestForceLeaveAndRemovePeerRefuseWhatWouldHurt: on a one-server
// cluster, remove-peer refuses the last voter and unknown IDs, force-leave
// refuses this node itself and unknown names, and both endpoints pass the
// admin API's guards (token, Content-Type, cross-site requests).
func TestForceLeaveAndRemovePeerRefuseWhatWouldHurt(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.AdminToken = "s3cret"
	a := startAgent(t, cfg)
	c := apiClient{t: t, base: "http://" + a.HTTPAddr(), token: "s3cret"}
	var st agent.RaftStatus
	eventually(t, "a leader", func() bool { c.json("GET", "/v1/raft", "", &st); return st.Leader == "solo" })

	cases := []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/v1/raft/remove-peer", `{"id": "solo"}`, http.StatusConflict, "it is the last voter"},
		{"/v1/raft/remove-peer", `{"id": "ghost"}`, http.StatusNotFound, `"ghost" is not in the Raft configuration`},
		{"/v1/raft/remove-peer", `{"id": " "}`, http.StatusBadRequest, "id is empty"},
		{"/v1/raft/remove-peer", `{"node": "solo"}`, http.StatusBadRequest, `unknown field "node"`},
		{"/v1/force-leave", `{"node": "solo"}`, http.StatusConflict, "only a failed member can be forced out"},
		{"/v1/force-leave", `{"node": "ghost", "prune": true}`, http.StatusNotFound, `"ghost" is not a member`},
		{"/v1/force-leave", `{}`, http.StatusBadRequest, "node is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.path+" "+tc.body, func(t *testing.T) {
			code, body := c.call("POST", tc.path, tc.body)
			require.Equal(t, tc.code, code, body)
			var e agent.APIError
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
			require.Contains(t, e.Error, tc.msg)
		})
	}
	c.json("GET", "/v1/raft", "", &st)
	require.Len(t, st.Peers, 1, "the last voter is still there")

	for _, path := range []string{"/v1/raft/remove-peer", "/v1/force-leave"} {
		code, body := apiClient{t: t, base: c.base}.call("POST", path, `{"id": "solo", "node": "solo"}`)
		require.Equal(t, http.StatusUnauthorized, code, "%s without the token: %s", path, body)

		req, err := http.NewRequest("POST", c.base+path, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode, "%s with a form's content type", path)

		req, err = http.NewRequest("POST", c.base+path, strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err = http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "%s from another site", path)
	}
}

// TestFailedStartJoinsNobody starts a second agent that joins a running
// one but cannot bind its admin port: the start fails and the running
// agent never saw it as a member (before, it had joined gossip first and
// stayed behind as a failed member).
func TestFailedStartJoinsNobody(t *testing.T) {
	first := startAgent(t, testConfig(t, "first"))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()

	cfg := testConfig(t, "second")
	cfg.BootstrapExpect = 0
	cfg.Join = []string{first.Members()[0].Addr}
	cfg.HTTPAddr = taken.Addr().String()
	_, err = agent.Start(context.Background(), cfg)
	require.ErrorContains(t, err, "http_addr "+cfg.HTTPAddr)

	for _, m := range first.Members() {
		require.Equal(t, "first", m.Name, "members after the failed start: %+v", first.Members())
	}
}
