package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestAdminAPIRefusesBrowserRequestsAndSlowClients probes a tokenless agent
// process (the default) as a web page in the local user's browser would,
// then holds 200 slow request bodies open against it: every browser request
// is refused and the agent stays a member; the slow connections are cut at
// --http-read-timeout or refused over --http-max-conns-per-host while
// dstatectl keeps working; dstatectl leave, a bodyless POST, still works.
func TestAdminAPIRefusesBrowserRequestsAndSlowClients(t *testing.T) {
	c := newCluster(t, 1, clusterOpts{extra: func(int) []string {
		return []string{"--http-read-timeout", "1s", "--http-max-conns-per-host", "50", "--http-allowed-hosts", "agent.example"}
	}})
	nd := c.nodes[0]
	_, port, _ := net.SplitHostPort(nd.httpAddr())
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	send := func(method, path, host, body string, header map[string]string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+nd.httpAddr()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []struct {
		what, method, path, host, body string
		header                         map[string]string
		want                           int
	}{
		{"text/plain leave", "POST", "/v1/leave", "", "x", map[string]string{"Content-Type": "text/plain"}, 415},
		{"form keyring install", "POST", "/v1/keyring/install", "", "key=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"foreign origin bootstrap", "POST", "/v1/raft/bootstrap", "", "{}", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}, 403},
		{"cross-site leave", "POST", "/v1/leave", "", "", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403},
		{"rebound host leave", "POST", "/v1/leave", "evil.example:" + port, "", map[string]string{"Content-Type": "application/json"}, 403},
		{"allowed proxy host", "GET", "/v1/members", "agent.example", "", nil, 200},
	} {
		code, body := send(p.method, p.path, p.host, p.body, p.header)
		if code != p.want {
			t.Errorf("%s: got %d, want %d: %s", p.what, code, p.want, body)
		}
	}
	if !nd.running() {
		t.Fatal("the agent exited after the browser requests")
	}
	if out, err := c.cli(nd, "members"); err != nil || !strings.Contains(out, "alive") {
		t.Fatalf("dstatectl members after the browser requests: %v: %s", err, out)
	}

	// 200 slow bodies from 127.0.0.2: 50 held until the read timeout, the
	// rest refused at once; dstatectl (from 127.0.0.1) is served meanwhile.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	head := "PUT /v1/kv/slow HTTP/1.1\r\nHost: " + nd.httpAddr() + "\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\nab"
	var conns []net.Conn
	defer func() {
		for _, cn := range conns {
			cn.Close()
		}
	}()
	for range 200 {
		cn, err := d.Dial("tcp", nd.httpAddr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn)
		_, _ = io.WriteString(cn, head)
	}
	if _, err := c.cli(nd, "put", "during", "slow-clients"); err != nil {
		t.Fatalf("dstatectl put while 200 slow bodies are open: %v", err)
	}
	for i, cn := range conns {
		_ = cn.SetReadDeadline(time.Now().Add(time.Minute)) // only keeps a failing test from hanging
		if _, err := io.ReadAll(cn); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("slow connection %d is still held by the agent", i)
		}
	}
	out, err := c.cli(nd, "metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []string{"http_max_conns_per_host", "http_read_timeout"} {
		if !strings.Contains(out, fmt.Sprintf("dstate_limit_exceeded_total{limit=%q}", limit)) ||
			strings.Contains(out, fmt.Sprintf("dstate_limit_exceeded_total{limit=%q} 0\n", limit)) {
			t.Errorf("no refusals counted under %s", limit)
		}
	}

	if _, err := c.cli(nd, "leave"); err != nil {
		t.Fatalf("dstatectl leave: %v", err)
	}
	c.waitExit(nd, 30*time.Second)
}
