package agent_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// apiError is the message of an APIError body.
func apiError(t *testing.T, body string) string {
	t.Helper()
	var e agent.APIError
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	return e.Error
}

func TestRequestBodyErrorsNameFieldsNotTypes(t *testing.T) {
	a := startAgent(t, testConfig(t, "solo"))
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	for _, tc := range []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"wrong type", "/v1/join", `{"addrs": "a:1"}`, 400, `join: body: want {"addrs": [...]}: field "addrs": got a JSON string, want an array of strings`},
		{"unknown field", "/v1/force-leave", `{"nod": "n2"}`, 400, `force-leave: body: want {"node": "...", "prune": false}: unknown field "nod"`},
		{"not an object", "/v1/raft/remove-peer", `["n2"]`, 400, `raft remove-peer: body: want {"id": "..."}: got a JSON array, want an object`},
		{"empty", "/v1/join", ``, 400, `join: body: want {"addrs": [...]}: the body is empty`},
		{"cut short", "/v1/keyring/install", `{"key": "x"`, 400, `keyring install: body: want {"key": "..."}: the JSON document is cut short`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := c.call("POST", tc.path, tc.body)
			require.Equal(t, tc.code, code, body)
			msg := apiError(t, body)
			require.Equal(t, tc.want, msg)
			require.NotContains(t, msg, "agent.", "no Go type names")
		})
	}
}

func TestTrailingDataAfterAJSONBodyIsRefused(t *testing.T) {
	a := startAgent(t, testConfig(t, "solo"))
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	for _, tc := range []struct{ path, body string }{
		{"/v1/join", `{"addrs": ["127.0.0.1:1"]} {"addrs": []}`},
		{"/v1/join", `{"addrs": ["127.0.0.1:1"]}x`},
		{"/v1/raft/bootstrap", `{"servers": []}[]`},
		{"/v1/raft/remove-peer", `{"id": "n9"} 1`},
		{"/v1/force-leave", `{"node": "n9"}{}`},
		{"/v1/keyring/install", `{"key": "x"} "y"`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := c.call("POST", tc.path, tc.body)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Contains(t, apiError(t, body), "trailing data after the JSON document")
		})
	}
	// White space after the document is not trailing data.
	code, body := c.call("POST", "/v1/force-leave", "{\"node\": \"n9\"}\n\t ")
	require.Equal(t, http.StatusNotFound, code, body)
}

func TestUnsupportedMethodIs405WithAllow(t *testing.T) {
	a := startAgent(t, testConfig(t, "solo"))
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/v1/members", "GET, HEAD"},
		{"DELETE", "/v1/health", "GET, HEAD"},
		{"GET", "/v1/join", "POST"},
		{"PATCH", "/v1/kv/x", "DELETE, GET, HEAD, PUT"},
		{"PUT", "/metrics", "GET, HEAD"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, c.base+tc.path, nil)
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, string(b))
			require.Equal(t, tc.allow, resp.Header.Get("Allow"))
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			require.Contains(t, apiError(t, string(b)), "method not allowed")
		})
	}
	code, body := c.call("GET", "/v1/nowhere", "")
	require.Equal(t, http.StatusNotFound, code, body)
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.AdminToken = "s3cret"
	a := startAgent(t, cfg)
	for _, tc := range []struct {
		header string
		code   int
		msg    string
	}{
		{"Bearer s3cret", 200, ""},
		{"bearer s3cret", 200, ""},
		{"BEARER s3cret", 200, ""},
		{"Bearer  s3cret ", 200, ""},
		{"bearer wrong", 401, "does not match"},
		{"Basic czNjcmV0", 401, "not a bearer token"},
		{"s3cret", 401, "not a bearer token"},
	} {
		t.Run(tc.header, func(t *testing.T) {
			req, err := http.NewRequest("GET", "http://"+a.HTTPAddr()+"/v1/members", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", tc.header)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tc.code, resp.StatusCode, string(b))
			require.Contains(t, string(b), tc.msg)
		})
	}
}

func TestKeyAndValueLimits(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.MaxKeyBytes, cfg.MaxValueBytes = 16, 32
	a := startAgent(t, cfg)
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"key at the limit", "PUT", "/v1/kv/" + strings.Repeat("k", 16), "v", 200, ""},
		{"key over the limit", "PUT", "/v1/kv/" + strings.Repeat("k", 17), "v", 400, "key: 17 bytes is over max_key_bytes (16)"},
		{"read of a key over the limit", "GET", "/v1/kv/" + strings.Repeat("k", 17), "", 400, "over max_key_bytes"},
		{"NUL", "PUT", "/v1/kv/a%00b", "v", 400, "key: control character U+0000 at byte 1"},
		{"newline", "DELETE", "/v1/kv/a%0Ab", "", 400, "control character U+000A"},
		{"DEL", "PUT", "/v1/kv/a%7F", "v", 400, "control character U+007F"},
		{"not UTF-8", "PUT", "/v1/kv/a%FF", "v", 400, "not UTF-8"},
		{"text is fine", "PUT", "/v1/kv/caf%C3%A9%20au%20lait", "v", 200, ""},
		{"value at the limit", "PUT", "/v1/kv/v", strings.Repeat("v", 32), 200, ""},
		{"value over the limit", "PUT", "/v1/kv/v", strings.Repeat("v", 33), 413, "value: is larger than max_value_bytes (32 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := c.call(tc.method, tc.path, tc.body)
			require.Equal(t, tc.code, code, body)
			if tc.msg != "" {
				require.Contains(t, apiError(t, body), tc.msg)
			}
		})
	}
}

func TestKeyAndValueLimitsAreValidated(t *testing.T) {
	for _, field := range []string{"max_key_bytes", "max_value_bytes"} {
		cfg := testConfig(t, "solo")
		switch field {
		case "max_key_bytes":
			cfg.MaxKeyBytes = -1
		case "max_value_bytes":
			cfg.MaxValueBytes = -1
		}
		var ce *agent.ConfigError
		require.ErrorAs(t, cfg.Validate(), &ce)
		require.Equal(t, field, ce.Field)
	}
}

func TestBootstrapSaysWhatHappened(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.BootstrapExpect = 0
	a := startAgent(t, cfg)
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	var res agent.BootstrapResult
	c.json("POST", "/v1/raft/bootstrap", `{"servers": []}`, &res)
	require.True(t, res.Bootstrapped)
	require.Len(t, res.Servers, 1)
	require.True(t, strings.HasPrefix(res.Servers[0], "solo="), res.Servers)
	c.json("POST", "/v1/raft/bootstrap", `{"servers": []}`, &res)
	require.False(t, res.Bootstrapped, "a second bootstrap changes nothing")
	require.Len(t, res.Servers, 1)
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	a := startAgent(t, testConfig(t, "solo"))
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	var doc struct {
		OpenAPI string         `json:"openapi"`
		Paths   map[string]any `json:"paths"`
	}
	c.json("GET", "/v1/openapi.json", "", &doc)
	require.Equal(t, "3.0.3", doc.OpenAPI)
	require.Contains(t, doc.Paths, "/v1/kv/{key}")
	require.JSONEq(t, string(agent.OpenAPI()), func() string { _, b := c.call("GET", "/v1/openapi.json", ""); return b }())
}
