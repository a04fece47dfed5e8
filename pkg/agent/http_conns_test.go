package agent_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// fromAddr is a client whose connections come from the loopback address
// ip (any of 127.0.0.0/8), one connection per request.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// slowConns opens n connections from ip to the agent at addr and sends
// each the start of a request, head, without finishing it. They are
// closed when the test ends; a connection the agent refused at once is
// among them too.
func slowConns(t *testing.T, ip, addr, head string, n int) []net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := d.Dial("tcp", addr)
		require.NoError(t, err)
		conns = append(conns, c)
		_, _ = io.WriteString(c, head) // fails when the agent has refused it already
	}
	return conns
}

// limitCount reads dstate_limit_exceeded_total{limit} through the agent's
// handler, which needs no connection.
func limitCount(t *testing.T, a *agent.Agent, limit string) string {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Host = a.HTTPAddr()
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	prefix := fmt.Sprintf("dstate_limit_exceeded_total{limit=%q} ", limit)
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	t.Fatalf("no %s in the metrics", prefix)
	return ""
}

func TestAdminAPIConnectionCaps(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.HTTPMaxConns, cfg.HTTPMaxConnsPerHost = 8, 5
	cfg.HTTPReadTimeout = agent.Duration(time.Hour) // the held connections stay held
	a := startAgent(t, cfg)
	head := "GET /v1/members HTTP/1.1\r\nHost: " + a.HTTPAddr() + "\r\n" // no blank line: never finished

	// Seven from one address: five held, two refused over the per-host cap.
	slowConns(t, "127.0.0.1", a.HTTPAddr(), head, 7)
	require.Eventually(t, func() bool { return limitCount(t, a, "http_max_conns_per_host") == "2" }, 20*time.Second, 10*time.Millisecond)

	// Three more from another address fill the listener's cap of eight:
	// a request from a third address is refused.
	third := slowConns(t, "127.0.0.3", a.HTTPAddr(), head, 3)
	require.Eventually(t, func() bool {
		resp, err := fromAddr("127.0.0.2").Get("http://" + a.HTTPAddr() + "/v1/members")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil && limitCount(t, a, "http_max_conns") != "0"
	}, 20*time.Second, 10*time.Millisecond, "a connection over http_max_conns is closed at once")

	// Once those three go, a normal request succeeds while the five slow
	// ones are still held.
	for _, c := range third {
		c.Close()
	}
	require.Eventually(t, func() bool {
		resp, err := fromAddr("127.0.0.2").Get("http://" + a.HTTPAddr() + "/v1/members")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, "2", limitCount(t, a, "http_max_conns_per_host"))
}

func TestAdminAPISlowBodiesAreCutAtTheReadTimeout(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.HTTPReadTimeout = agent.Duration(time.Second)
	a := startAgent(t, cfg)
	head := "PUT /v1/kv/slow HTTP/1.1\r\nHost: " + a.HTTPAddr() + "\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nab"

	const n = 200
	conns := slowConns(t, "127.0.0.1", a.HTTPAddr(), head, n)
	resp, err := fromAddr("127.0.0.2").Get("http://" + a.HTTPAddr() + "/v1/members")
	require.NoError(t, err, "a normal request from another address is served meanwhile")
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// Every slow connection is closed by the agent: refused over the
	// per-host cap (64 by default) or cut at the read timeout. The
	// deadline here only keeps a failing test from hanging.
	for i, c := range conns {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
		_, err := io.ReadAll(c)
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "connection %d is still held: %v", i, err)
	}
	var refused, cut int
	_, err = fmt.Sscan(limitCount(t, a, "http_max_conns_per_host"), &refused)
	require.NoError(t, err)
	_, err = fmt.Sscan(limitCount(t, a, "http_read_timeout"), &cut)
	require.NoError(t, err)
	require.Equal(t, n, refused+cut, "each slow connection is counted once: %d refused, %d cut", refused, cut)
	require.Positive(t, cut)

	// The agent still serves, with nothing of the key written.
	code, body := apiClient{t: t, base: "http://" + a.HTTPAddr()}.call("GET", "/v1/kv/slow", "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"found": false`)
}
