package agent_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// uiGet sends GET url with the given headers (Host among them) and returns
// the status, headers and body.
func uiGet(t *testing.T, url string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// TestDashboardFilesNeedNoTokenButTheDataDoes: with an admin token the
// dashboard's static files are served without it (they hold no data),
// with a Content-Security-Policy that allows the agent's own address only;
// the API calls the page makes stay behind the token, and pass with it
// when sent as a same-origin browser request.
func TestDashboardFilesNeedNoTokenButTheDataDoes(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.AdminToken = "s3cret"
	a := startAgent(t, cfg)
	base := "http://" + a.HTTPAddr()
	page := map[string]string{"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"}

	for path, ctype := range map[string]string{
		"/ui/":            "text/html",
		"/ui/app.js":      "text/javascript",
		"/ui/style.css":   "text/css",
		"/ui/favicon.svg": "image/svg+xml",
	} {
		code, h, body := uiGet(t, base+path, page)
		require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
		require.Contains(t, h.Get("Content-Type"), ctype, path)
		csp := h.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'self'", path)
		require.Contains(t, csp, "frame-ancestors 'none'", path)
		require.NotContains(t, csp, "unsafe-inline", path)
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), path)
		require.NotEmpty(t, body, path)
	}
	_, _, html := uiGet(t, base+"/ui/", page)
	require.NotContains(t, html, "http://", "the page loads nothing from another address")
	require.NotContains(t, html, "https://", "the page loads nothing from another address")
	require.NotContains(t, html, "<script>", "no inline script (the CSP forbids it)")
	require.NotContains(t, html, "style=", "no inline style (the CSP forbids it)")

	// /ui redirects to /ui/.
	req, err := http.NewRequest(http.MethodGet, base+"/ui", nil)
	require.NoError(t, err)
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, 3, resp.StatusCode/100, "a redirect")
	require.Equal(t, "/ui/", resp.Header.Get("Location"))

	// The page's own data calls: refused without the token, answered with
	// it; a page of another origin is refused even with it.
	fetch := map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Referer": base + "/ui/"}
	for _, path := range []string{"/v1/members", "/v1/states", "/v1/states/kv", "/v1/raft", "/v1/health"} {
		code, _, body := uiGet(t, base+path, fetch)
		require.Equal(t, http.StatusUnauthorized, code, "%s: %s", path, body)
	}
	fetch["Authorization"] = "Bearer s3cret"
	for _, path := range []string{"/v1/members", "/v1/states", "/v1/states/kv", "/v1/raft", "/v1/health"} {
		code, _, body := uiGet(t, base+path, fetch)
		if path == "/v1/health" && code == http.StatusServiceUnavailable {
			continue // unhealthy until the single server elects itself: answered all the same
		}
		require.Equal(t, http.StatusOK, code, "%s: %s", path, body)
	}
	fetch["Sec-Fetch-Site"] = "cross-site"
	fetch["Origin"] = "http://evil.example"
	code, _, body := uiGet(t, base+"/v1/members", fetch)
	require.Equal(t, http.StatusForbidden, code, body)
	// A page of another origin cannot load the dashboard either.
	code, _, body = uiGet(t, base+"/ui/", map[string]string{"Sec-Fetch-Site": "cross-site"})
	require.Equal(t, http.StatusForbidden, code, body)
}

// TestDashboardWithoutToken: a tokenless agent serves the page and its
// data to same-origin requests on its own address, and refuses a Host
// that is not its address (DNS rebinding) for the page too.
func TestDashboardWithoutToken(t *testing.T) {
	a := startAgent(t, testConfig(t, "solo"))
	base := "http://" + a.HTTPAddr()
	code, _, body := uiGet(t, base+"/ui/", map[string]string{"Sec-Fetch-Site": "none"})
	require.Equal(t, http.StatusOK, code, body)
	require.True(t, strings.Contains(body, "app.js"), body)
	code, _, body = uiGet(t, base+"/v1/members", map[string]string{"Sec-Fetch-Site": "same-origin", "Referer": base + "/ui/"})
	require.Equal(t, http.StatusOK, code, body)
	code, _, body = uiGet(t, base+"/ui/", map[string]string{"Host": "rebound.example:80"})
	require.Equal(t, http.StatusForbidden, code, body)
	// Only GET and HEAD reach the files.
	req, err := http.NewRequest(http.MethodPost, base+"/ui/", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}
