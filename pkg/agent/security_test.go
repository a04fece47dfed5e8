package agent_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/tlsgen"
	"github.com/dstate-go/dstate/pkg/agent"
)

func TestAdminRequestBodiesOverTheLimitAreRefusedAndCounted(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.MaxRequestBytes = 16
	a := startAgent(t, cfg)
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}

	code, body := c.call("PUT", "/v1/kv/k", strings.Repeat("v", 16))
	require.Equal(t, http.StatusOK, code, "a body at the limit is accepted: %s", body)
	code, body = c.call("PUT", "/v1/kv/k", strings.Repeat("v", 17))
	require.Equal(t, http.StatusRequestEntityTooLarge, code, body)
	require.Contains(t, body, "larger than max_request_bytes (16 bytes)")
	code, body = c.call("POST", "/v1/join", `{"addrs": ["127.0.0.1:1", "127.0.0.1:2"]}`)
	require.Equal(t, http.StatusRequestEntityTooLarge, code, body)

	_, metrics := c.call("GET", "/metrics", "")
	require.Contains(t, metrics, `dstate_limit_exceeded_total{limit="max_request_bytes"} 2`)
	require.Contains(t, metrics, `dstate_limit_exceeded_total{limit="max_snapshot_bytes"} 0`)
	require.Contains(t, metrics, `dstate_transport_queue_capacity 1024`)
}

func TestAdminTokenFromAFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(path, []byte("  from-a-file\n"), 0o600))
	cfg := testConfig(t, "solo")
	cfg.AdminTokenFile = path
	cfg.HTTPAddr = "0.0.0.0:0" // off loopback: allowed because a token is configured
	a := startAgent(t, cfg)
	_, port, _ := strings.Cut(a.HTTPAddr(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(a.HTTPAddr(), ":")
	}
	base := "http://127.0.0.1:" + port
	code, _ := apiClient{t: t, base: base}.call("GET", "/v1/members", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := apiClient{t: t, base: base, token: "from-a-file"}.call("GET", "/v1/members", "")
	require.Equal(t, http.StatusOK, code, body)

	for name, content := range map[string]string{"empty": " \n", "two lines": "a\nb\n"} {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		cfg := testConfig(t, "other")
		cfg.AdminTokenFile = p
		_, err := agent.Start(context.Background(), cfg)
		require.ErrorContains(t, err, "admin_token_file "+p)
	}
	cfg = testConfig(t, "other")
	cfg.AdminTokenFile = filepath.Join(dir, "missing")
	_, err := agent.Start(context.Background(), cfg)
	require.ErrorContains(t, err, "admin_token_file")
	require.ErrorContains(t, err, "no such file")
}

func TestAdminAPIOffLoopbackNeedsAToken(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.HTTPAddr = "0.0.0.0:0"
	_, err := agent.Start(context.Background(), cfg)
	require.ErrorContains(t, err, "http_addr")
	require.ErrorContains(t, err, "admin_token is empty")
}

func TestAdminAPIOverHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("", 0)
	require.NoError(t, err)
	certFile, keyFile, err := ca.IssueFiles(dir, "solo", tlsgen.IssueOptions{}, false)
	require.NoError(t, err)
	cfg := testConfig(t, "solo")
	cfg.HTTPTLSCertFile, cfg.HTTPTLSKeyFile = certFile, keyFile
	a := startAgent(t, cfg)

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + a.HTTPAddr() + "/v1/health/live")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.NoError(t, json.Unmarshal(b, new(map[string]any)))

	plain, err := http.Get("http://" + a.HTTPAddr() + "/v1/health/live")
	if err == nil {
		plain.Body.Close()
		require.Equal(t, http.StatusBadRequest, plain.StatusCode, "plain HTTP to an HTTPS admin API is answered with 400 by net/http")
	}
}

func TestNodeCertificateMustNameTheNodeID(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("", 0)
	require.NoError(t, err)
	caFile, _, err := ca.WriteFiles(dir, false)
	require.NoError(t, err)
	certFile, keyFile, err := ca.IssueFiles(dir, "someone-else", tlsgen.IssueOptions{}, false)
	require.NoError(t, err)
	cfg := testConfig(t, "solo")
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile = certFile, keyFile, caFile
	_, err = agent.Start(context.Background(), cfg)
	require.ErrorContains(t, err, `not node_id "solo"`)
	require.ErrorContains(t, err, "dstatectl tls cert --node-id solo")
}

func TestLimitConfigIsValidated(t *testing.T) {
	for _, tc := range []struct {
		set  func(*agent.Config)
		want string
	}{
		{func(c *agent.Config) { c.MaxSnapshotBytes = -1 }, "max_snapshot_bytes: -1 is negative"},
		{func(c *agent.Config) { c.PeerQueueFrames = -5 }, "peer_queue_frames: -5 is negative"},
		{func(c *agent.Config) { c.MaxFrameBytes = 10 }, "max_frame_bytes: 10 is below"},
		{func(c *agent.Config) { c.MaxFrameBytes, c.MaxMessageBytes = 4096, 2048 }, "max_message_bytes: 2048 is smaller than max_frame_bytes"},
		{func(c *agent.Config) { c.HTTPTLSCertFile = "x.pem" }, "http_tls_cert_file and http_tls_key_file must be set together"},
	} {
		cfg := testConfig(t, "solo")
		tc.set(&cfg)
		require.ErrorContains(t, cfg.Validate(), tc.want)
	}
}
