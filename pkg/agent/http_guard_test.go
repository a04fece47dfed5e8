package agent_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// browserRequest is one request as a web page (or a DNS-rebinding page)
// could make the local user's browser send it.
type browserRequest struct {
	name               string
	method, path, body string
	host               string // Host header; "" is the agent's address
	header             map[string]string
	wantStatus         int
	wantMsg            string
}

// send sends r to the agent at addr and returns the status and body.
func (r browserRequest) send(t *testing.T, addr string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(r.method, "http://"+addr+r.path, strings.NewReader(r.body))
	require.NoError(t, err)
	if r.host != "" {
		req.Host = r.host
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := noKeepAlive().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// noKeepAlive is a client that closes each connection after its request,
// so the agent's connection counts go back down.
func noKeepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func TestCrossSiteRequestsToATokenlessAgentAreRefused(t *testing.T) {
	a := startAgent(t, testConfig(t, "solo"))
	_, port, err := net.SplitHostPort(a.HTTPAddr())
	require.NoError(t, err)
	jsonBody := map[string]string{"Content-Type": "application/json"}
	with := func(k, v string) map[string]string {
		return map[string]string{"Content-Type": "application/json", k: v}
	}
	for _, r := range []browserRequest{
		{name: "text/plain leave", method: "POST", path: "/v1/leave", body: "x",
			header: map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, wantStatus: 415, wantMsg: "POST /v1/leave needs Content-Type application/json, got text/plain"},
		{name: "form leave", method: "POST", path: "/v1/leave", body: "a=b",
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, wantStatus: 415, wantMsg: "needs Content-Type application/json"},
		{name: "leave without content type", method: "POST", path: "/v1/leave", wantStatus: 415, wantMsg: "got none"},
		{name: "multipart keyring install", method: "POST", path: "/v1/keyring/install", body: "--b--",
			header: map[string]string{"Content-Type": "multipart/form-data; boundary=b"}, wantStatus: 415, wantMsg: "needs Content-Type application/json"},
		{name: "text/plain bootstrap", method: "POST", path: "/v1/raft/bootstrap", body: `{}`,
			header: map[string]string{"Content-Type": "text/plain"}, wantStatus: 415, wantMsg: "needs Content-Type application/json"},
		{name: "text/plain put", method: "PUT", path: "/v1/kv/k", body: "v",
			header: map[string]string{"Content-Type": "text/plain"}, wantStatus: 415, wantMsg: "needs Content-Type application/json or application/octet-stream"},
		{name: "origin of another site", method: "POST", path: "/v1/raft/bootstrap", body: `{}`,
			header: with("Origin", "http://evil.example"), wantStatus: 403, wantMsg: "Origin: http://evil.example is not this agent's address"},
		{name: "origin of another port on localhost", method: "POST", path: "/v1/leave",
			header: with("Origin", "http://localhost:3000"), wantStatus: 403, wantMsg: "Origin: http://localhost:3000"},
		{name: "origin null", method: "POST", path: "/v1/leave",
			header: with("Origin", "null"), wantStatus: 403, wantMsg: `Origin: "null"`},
		{name: "sec-fetch-site cross-site", method: "POST", path: "/v1/leave",
			header: with("Sec-Fetch-Site", "cross-site"), wantStatus: 403, wantMsg: "Sec-Fetch-Site: cross-site"},
		{name: "sec-fetch-site same-site read", method: "GET", path: "/v1/members",
			header: map[string]string{"Sec-Fetch-Site": "same-site"}, wantStatus: 403, wantMsg: "Sec-Fetch-Site: same-site"},
		{name: "rebound host leave", method: "POST", path: "/v1/leave", host: "evil.example:" + port,
			header: jsonBody, wantStatus: 403, wantMsg: `Host "evil.example:` + port + `" is not this agent's admin address`},
		{name: "rebound host read", method: "GET", path: "/v1/keyring", host: "evil.example:" + port, wantStatus: 403, wantMsg: "DNS-rebinding"},
		{name: "rebound host with the agent's origin", method: "POST", path: "/v1/leave", host: "evil.example:" + port,
			header: with("Origin", "http://evil.example:"+port), wantStatus: 403, wantMsg: "http_allowed_hosts"},
	} {
		t.Run(r.name, func(t *testing.T) {
			code, body := r.send(t, a.HTTPAddr())
			require.Equal(t, r.wantStatus, code, body)
			var e agent.APIError
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
			require.Contains(t, e.Error, r.wantMsg)
		})
	}

	select {
	case <-a.Done():
		t.Fatal("the agent left the cluster")
	default:
	}
	var ms []agent.Member
	apiClient{t: t, base: "http://" + a.HTTPAddr()}.json("GET", "/v1/members", "", &ms)
	require.Len(t, ms, 1)
	require.Equal(t, "alive", ms[0].Status)
}

func TestRequestsFromTheAgentsOwnAddressesAreServed(t *testing.T) {
	a := startAgent(t, testConfig(t, "solo"))
	_, port, err := net.SplitHostPort(a.HTTPAddr())
	require.NoError(t, err)
	for _, r := range []browserRequest{
		{name: "localhost", method: "GET", path: "/v1/members", host: "localhost:" + port},
		{name: "LOCALHOST", method: "GET", path: "/v1/members", host: "LOCALHOST:" + port},
		{name: "ipv6 loopback", method: "GET", path: "/v1/members", host: "[::1]:" + port},
		{name: "typed in the address bar", method: "GET", path: "/metrics", header: map[string]string{"Sec-Fetch-Site": "none"}},
		{name: "same origin", method: "PUT", path: "/v1/kv/k", body: "v",
			header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://" + a.HTTPAddr(), "Content-Type": "application/octet-stream"}},
		{name: "json put", method: "PUT", path: "/v1/kv/k", body: "not json, stored as sent", header: map[string]string{"Content-Type": "application/json; charset=utf-8"}},
		{name: "json delete", method: "DELETE", path: "/v1/kv/k", header: map[string]string{"Content-Type": "application/json"}},
	} {
		t.Run(r.name, func(t *testing.T) {
			code, body := r.send(t, a.HTTPAddr())
			require.Equal(t, http.StatusOK, code, body)
		})
	}
}

func TestHostCheckWithATokenAndAllowedHosts(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.AdminToken = "s3cret"
	a := startAgent(t, cfg)
	auth := map[string]string{"Authorization": "Bearer s3cret"}
	code, body := browserRequest{method: "GET", path: "/v1/members", host: "agent.example:7380", header: auth}.send(t, a.HTTPAddr())
	require.Equal(t, http.StatusOK, code, "with a token any Host is served: %s", body)
	code, body = browserRequest{method: "GET", path: "/v1/members", host: "agent.example:7380",
		header: map[string]string{"Authorization": "Bearer s3cret", "Origin": "http://evil.example"}}.send(t, a.HTTPAddr())
	require.Equal(t, http.StatusForbidden, code, "a foreign Origin is refused with a token too: %s", body)

	cfg = testConfig(t, "proxied")
	cfg.AdminToken = "s3cret"
	cfg.HTTPAllowedHosts = []string{"Proxy.Example", "admin.example:8443"}
	a = startAgent(t, cfg)
	for host, want := range map[string]int{
		"proxy.example": 200, "proxy.example:80": 200, "admin.example:8443": 200, a.HTTPAddr(): 200,
		"admin.example": 403, "proxy.example:8080": 403, "evil.example": 403,
	} {
		code, body := browserRequest{method: "GET", path: "/v1/members", host: host, header: auth}.send(t, a.HTTPAddr())
		require.Equal(t, want, code, "Host %s: %s", host, body)
	}
}

func TestAllowedHostsAreValidated(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.HTTPAllowedHosts = []string{"ok.example", "http://proxy.example/"}
	require.ErrorContains(t, cfg.Validate(), "http_allowed_hosts[1]")
}
