package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/dstate-go/dstate/pkg/agent"
)

// Fuzz targets for what an operator sends an agent: admin API requests
// (method, path, query string and body) and the JSON config file. Each
// asserts that no input panics, that bad input is refused with the
// package's error (a 4xx with an APIError body; a *ConfigError or an
// "agent config:" error naming the file) that says what was wrong, and
// that handling one input allocates no more than the request limit plus a
// multiple of the input.

// fuzzRoute is one request shape FuzzAdminAPI sends; seg fills the
// route's {name}, {key} or {op}. POST /v1/leave is left out: it stops the
// agent.
type fuzzRoute struct {
	method, path string
	seg          bool
}

var fuzzRoutes = []fuzzRoute{
	{"GET", "/v1/health", false},
	{"GET", "/v1/members", false},
	{"GET", "/v1/states", false},
	{"GET", "/v1/states/", true},
	{"GET", "/v1/kv/", true},
	{"PUT", "/v1/kv/", true},
	{"DELETE", "/v1/kv/", true},
	{"POST", "/v1/join", false},
	{"GET", "/v1/raft", false},
	{"POST", "/v1/raft/bootstrap", false},
	{"GET", "/v1/keyring", false},
	{"POST", "/v1/keyring/", true},
	{"GET", "/metrics", false},
	{"POST", "/v1/", true},
	{"PATCH", "/v1/kv/", true},
	{"PUT", "/v1/states", false},
	{"POST", "/v1/force-leave", false},
	{"POST", "/v1/raft/remove-peer", false},
	{"GET", "/v1/health/live", false},
	{"GET", "/v1/health/ready", false},
}

// fuzzHeaders are the header sets FuzzAdminAPI sends: none beyond the
// Host and Content-Type the CLI sends, then what a web page could send,
// which the agent refuses.
var fuzzHeaders = []map[string]string{
	nil,
	{"Content-Type": "text/plain;charset=UTF-8"},
	{"Content-Type": "application/x-www-form-urlencoded"},
	{"Content-Type": ""},
	{"Origin": "http://evil.example"},
	{"Sec-Fetch-Site": "cross-site"},
	{"Host": "evil.example:7380"},
}

// fuzzMaxRequest is the agent's max_request_bytes in FuzzAdminAPI: small,
// so the allocation bound means something.
const fuzzMaxRequest = 4 << 10

// fuzzResponseBudget is what serving one admin request may allocate
// whatever its input: the largest response (GET /metrics renders every
// metric family, about 900 KB allocated with the transport, Raft, health
// and limit families) and what the agent's own goroutines allocate
// meanwhile. It does not grow with the input: a request body is bounded by
// fuzzMaxRequest.
const fuzzResponseBudget = 2 << 20

// fuzzAgent starts one single-node server agent for the fuzz process and
// waits until the durable kv state is ready.
func fuzzAgent(f *testing.F) (*agent.Agent, http.Handler) {
	c := agent.DefaultConfig()
	c.NodeID, c.DataDir, c.Fast = "fz", f.TempDir(), true
	c.SerfAddr, c.TransportAddr, c.RaftAddr, c.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.BootstrapExpect = 1
	c.LogLevel = "error"
	c.LoadInterval = agent.Duration(time.Second)
	c.MaxRequestBytes = fuzzMaxRequest
	a, err := agent.Start(context.Background(), c)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			f.Error(err)
		}
	})
	h := a.Handler()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/kv/x?state=durable-kv", nil)
		req.Host = a.HTTPAddr()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			return a, h
		}
		if time.Now().After(deadline) {
			f.Fatalf("durable-kv not ready: %d %s", rec.Code, rec.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func FuzzAdminAPI(f *testing.F) {
	route := func(method, p string) byte {
		for i, r := range fuzzRoutes {
			if r.method == method && r.path == p {
				return byte(i)
			}
		}
		f.Fatalf("no route %s %s", method, p)
		return 0
	}
	big := strings.Repeat("v", fuzzMaxRequest+1)
	fuzzcheck.AddSeeds(f,
		[]any{route("GET", "/v1/health"), "", "max_staleness=5s", []byte(nil)},
		[]any{route("GET", "/v1/health"), "", "max_staleness=-1s", []byte(nil)},
		[]any{route("GET", "/v1/health"), "", "max_staleness=forever", []byte(nil)},
		[]any{route("GET", "/v1/members"), "", "", []byte(nil)},
		[]any{route("GET", "/v1/states"), "", "", []byte(nil)},
		[]any{route("GET", "/v1/states/"), "kv", "node=fz&max_staleness=1s", []byte(nil)},
		[]any{route("GET", "/v1/states/"), "durable-kv", "consistent=true", []byte(nil)},
		[]any{route("GET", "/v1/states/"), "kv", "consistent=maybe", []byte(nil)},
		[]any{route("GET", "/v1/states/"), "nope", "", []byte(nil)},
		[]any{route("GET", "/v1/kv/"), "greeting", "", []byte(nil)},
		[]any{route("GET", "/v1/kv/"), "greeting", "state=load", []byte(nil)},
		[]any{route("GET", "/v1/kv/"), "greeting", "node=elsewhere", []byte(nil)},
		[]any{route("PUT", "/v1/kv/"), "greeting", "", []byte("hello")},
		[]any{route("PUT", "/v1/kv/"), "color", "state=durable-kv", []byte("blue")},
		[]any{route("PUT", "/v1/kv/"), "k", "state=durable-kv", []byte(big)},
		[]any{route("PUT", "/v1/kv/"), "../../v1/raft", "", []byte("x")},
		[]any{route("DELETE", "/v1/kv/"), "greeting", "state=nope", []byte(nil)},
		// Not UTF-8: JSON would store and report another key (and the
		// key could never be deleted by the name the API gave back).
		[]any{route("PUT", "/v1/kv/"), "\xff", "", []byte("v")},
		[]any{route("PUT", "/v1/kv/"), "k", "", []byte("\xfe")},
		[]any{route("POST", "/v1/join"), "", "", []byte(`{"addrs": []}`)},
		[]any{route("POST", "/v1/join"), "", "", []byte(`{"addrs": "127.0.0.1:1"}`)},
		[]any{route("POST", "/v1/join"), "", "", []byte(`{"adrs": ["x"]}`)},
		[]any{route("POST", "/v1/join"), "", "", []byte(`{"addrs": [` + strings.Repeat(`"x",`, fuzzMaxRequest/4) + `"x"]}`)},
		[]any{route("GET", "/v1/raft"), "", "", []byte(nil)},
		[]any{route("POST", "/v1/raft/bootstrap"), "", "", []byte(nil)},
		[]any{route("POST", "/v1/raft/bootstrap"), "", "", []byte(`{}`)},
		[]any{route("POST", "/v1/raft/bootstrap"), "", "", []byte(`{"servers": ["fz=127.0.0.1:1", "other"]}`)},
		[]any{route("POST", "/v1/raft/bootstrap"), "", "", []byte(`{"servers": [`)},
		[]any{route("GET", "/v1/keyring"), "", "", []byte(nil)},
		[]any{route("POST", "/v1/keyring/"), "install", "", []byte(`{"key": "T9jncgl9mbLus+baTTa7q7nPSUrXwbDi2dhbtqir37s="}`)},
		[]any{route("POST", "/v1/keyring/"), "use", "", []byte(`{"key": " "}`)},
		[]any{route("POST", "/v1/keyring/"), "rotate", "", []byte(`{}`)},
		[]any{route("GET", "/metrics"), "", "", []byte(nil)},
		[]any{route("POST", "/v1/"), "nope", "", []byte(nil)},
		[]any{route("PATCH", "/v1/kv/"), "greeting", "", []byte("x")},
		[]any{route("PUT", "/v1/states"), "", "", []byte("[]")},
		[]any{route("POST", "/v1/force-leave"), "", "", []byte(`{"node": "nobody", "prune": true}`)},
		[]any{route("POST", "/v1/force-leave"), "", "", []byte(`{"node": "fz"}`)},
		[]any{route("POST", "/v1/raft/remove-peer"), "", "", []byte(`{"id": "fz"}`)},
		[]any{route("POST", "/v1/raft/remove-peer"), "", "", []byte(`{"id": ""}`)},
		// What a web page could send: each refused with 403 or 415.
		[]any{route("POST", "/v1/raft/bootstrap") + 1*byte(len(fuzzRoutes)), "", "", []byte(`{}`)},
		[]any{route("POST", "/v1/keyring/") + 2*byte(len(fuzzRoutes)), "install", "", []byte(`key=x`)},
		[]any{route("DELETE", "/v1/kv/") + 3*byte(len(fuzzRoutes)), "greeting", "", []byte(nil)},
		[]any{route("PUT", "/v1/kv/") + 4*byte(len(fuzzRoutes)), "greeting", "", []byte("hello")},
		[]any{route("GET", "/v1/raft") + 5*byte(len(fuzzRoutes)), "", "", []byte(nil)},
		[]any{route("GET", "/v1/members") + 6*byte(len(fuzzRoutes)), "", "", []byte(nil)},
	)
	a, h := fuzzAgent(f)
	f.Fuzz(func(t *testing.T, sel byte, seg, query string, body []byte) {
		r := fuzzRoutes[int(sel)%len(fuzzRoutes)]
		// The high bits of sel pick the headers: what the CLI sends
		// (0, so every seed above), or what a web page could send.
		headers := fuzzHeaders[(int(sel)/len(fuzzRoutes))%len(fuzzHeaders)]
		p := r.path
		if r.seg {
			p += seg
		}
		if r.method == "POST" && p == "/v1/leave" {
			return // it would stop the agent
		}
		if r.path == "/v1/join" {
			// A well-formed join reaches out to the addresses: not what
			// this target is about (and not to be aimed at real hosts).
			var jr agent.JoinRequest
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if dec.Decode(&jr) == nil && len(jr.Addrs) > 0 {
				return
			}
		}
		serve := func() *httptest.ResponseRecorder {
			req := httptest.NewRequest(r.method, "/", bytes.NewReader(body))
			req.URL = &url.URL{Path: p, RawQuery: query}
			req.RequestURI = req.URL.RequestURI()
			req.Host = a.HTTPAddr()
			if r.method != "GET" {
				req.Header.Set("Content-Type", "application/json")
			}
			for k, v := range headers {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec
		}
		// The agent's own goroutines (Raft, gossip, the load sampler)
		// allocate meanwhile, at times over 1 MiB within a few requests,
		// so a request over the bound is measured again after pauses
		// that let such a burst pass: an allocation the input causes
		// shows every time, and every request here may be repeated.
		var rec *httptest.ResponseRecorder
		in := len(seg) + len(query) + len(body)
		for i, pause := range []time.Duration{0, 50 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, -1} {
			if pause < 0 {
				t.Fatalf("%s %s: over the bound %d times in a row", r.method, r.path, i)
			}
			time.Sleep(pause)
			over := fuzzcheck.Over(fuzzMaxRequest+fuzzResponseBudget, in, 64, func() { rec = serve() })
			if over == "" {
				break
			}
			t.Logf("%s %s, attempt %d: %s", r.method, r.path, i+1, over)
		}
		checkResponse(t, r.method, p, query, rec)

		// Keep the kv states small whatever was written, so that the
		// allocations of one request do not grow with the run.
		if r.method == "PUT" && rec.Code == http.StatusOK {
			var w agent.WriteResult
			if err := json.Unmarshal(rec.Body.Bytes(), &w); err != nil {
				t.Fatal(err)
			}
			if w.Key != seg {
				t.Fatalf("PUT of key %q reported key %q", seg, w.Key)
			}
			del := httptest.NewRequest("DELETE", "/", nil)
			del.URL = &url.URL{Path: "/v1/kv/" + w.Key, RawQuery: url.Values{"state": {w.State}}.Encode()}
			del.Host = a.HTTPAddr()
			del.Header.Set("Content-Type", "application/json")
			drec := httptest.NewRecorder()
			h.ServeHTTP(drec, del)
			if drec.Code != http.StatusOK {
				t.Fatalf("deleting key %q of %s that was just written: %d %s", w.Key, w.State, drec.Code, drec.Body)
			}
		}
	})
}

// checkResponse asserts the response is a success, a redirect to the
// clean form of an unclean path, or a 4xx whose JSON body says what was
// wrong.
func checkResponse(t *testing.T, method, p, query string, rec *httptest.ResponseRecorder) {
	t.Helper()
	what := fmt.Sprintf("%s %q ?%q", method, p, query)
	body := rec.Body.Bytes()
	t.Logf("%s: %d %.120s", what, rec.Code, body)
	switch code := rec.Code; {
	case code >= 200 && code < 300:
		if p == "/metrics" {
			if !bytes.Contains(body, []byte("# TYPE")) {
				t.Fatalf("%s: %d with no metrics: %.200s", what, code, body)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("%s: %d with a body that is not JSON: %.200s", what, code, body)
		}
	case code >= 300 && code < 400:
		if path.Clean(p) == p && !strings.HasSuffix(p, "/") || rec.Header().Get("Location") == "" {
			t.Fatalf("%s: redirected (%d) to %q", what, code, rec.Header().Get("Location"))
		}
	case code >= 400 && code < 500:
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s: %d with Content-Type %q: %.200s", what, code, ct, body)
		}
		var e agent.APIError
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || strings.TrimSpace(e.Error) == "" {
			t.Fatalf("%s: %d with an error body that says nothing: %.200s (%v)", what, code, body, err)
		}
	default:
		t.Fatalf("%s: status %d for operator input: %.300s", what, code, body)
	}
}

// configFields are the JSON names a *ConfigError may name.
func configFields() map[string]bool {
	out := map[string]bool{}
	ty := reflect.TypeOf(agent.Config{})
	for i := range ty.NumField() {
		out[strings.Split(ty.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	return out
}

func FuzzLoadConfig(f *testing.F) {
	valid := agent.DefaultConfig()
	valid.NodeID, valid.DataDir = "n1", "/var/lib/dstate"
	valid.Join = []string{"10.0.0.2:7946"}
	valid.LoadInterval = agent.Duration(3 * time.Second)
	full, err := json.MarshalIndent(valid, "", "  ")
	if err != nil {
		f.Fatal(err)
	}
	fuzzcheck.AddSeeds(f,
		[]any{full},
		[]any{[]byte(`{}`)},
		[]any{[]byte(`{"node_id": "from-file", "join": ["127.0.0.1:1"], "load_interval": "3s", "fast": true}`)},
		[]any{[]byte(`{"node_id": "a b"}`)},
		[]any{[]byte(`{"node_idd": "x"}`)},
		[]any{[]byte(`{"load_interval": 1000000}`)},
		[]any{[]byte(`{"load_interval": "-1s"}`)},
		[]any{[]byte(`{"load_interval": "soon"}`)},
		[]any{[]byte(`{"load_interval": true}`)},
		[]any{[]byte(`{"bootstrap_expect": 1e400}`)},
		[]any{[]byte(`{"http_addr": "0.0.0.0:7380"}`)},
		[]any{[]byte(`{"join": ["nope"]}`)},
		[]any{[]byte(`{"tls_cert_file": "cert.pem"}`)},
		[]any{[]byte(`{"max_frame_bytes": 10}`)},
		[]any{[]byte(`{"max_request_bytes": -1}`)},
		[]any{[]byte(`{"log_level": "loud"}`)},
		[]any{[]byte(`{"server": false}`)},
		[]any{[]byte(`{"node_id": "x"`)},
		[]any{[]byte(`[`)},
		[]any{[]byte{}},
		[]any{[]byte(`null`)},
		[]any{[]byte(`{"join": [` + strings.Repeat(`"",`, 1000) + `""]}`)},
		// Content after the document used to be ignored.
		[]any{[]byte(`{"node_id": "a"} {"node_id": "b"}`)},
		[]any{[]byte(`{"node_id": "a"}]`)},
		[]any{[]byte("{\"node_id\": \"a\"}\n \t\n")},
	)
	dir := f.TempDir()
	file := filepath.Join(dir, "agent.json")
	fields := configFields()
	base := func() agent.Config {
		c := agent.DefaultConfig()
		c.NodeID, c.DataDir = "n1", dir
		return c
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if err := os.WriteFile(file, in, 0o600); err != nil {
			t.Fatal(err)
		}
		c := base()
		var err, verr error
		fuzzcheck.Alloc(t, "LoadFile+Validate", 0, len(in), 64, func() {
			if err = c.LoadFile(file); err == nil {
				verr = c.Validate()
			}
		})
		if trailing := afterFirstValue(in); err == nil && trailing != "" {
			t.Fatalf("LoadFile accepted %q after the JSON document", trailing)
		}
		if err != nil {
			// Not a JSON document of Config: the error names the file and
			// says more.
			msg := err.Error()
			prefix := "agent config: " + file + ": "
			if !strings.HasPrefix(msg, prefix) || strings.TrimSpace(strings.TrimPrefix(msg, prefix)) == "" {
				t.Fatalf("LoadFile: %q does not name the file and the problem", msg)
			}
			if errors.Unwrap(err) == nil {
				t.Fatalf("LoadFile: %q wraps no cause", msg)
			}
			return
		}
		if verr != nil {
			var ce *agent.ConfigError
			if !errors.As(verr, &ce) {
				t.Fatalf("Validate: %v (%T) is not a *ConfigError", verr, verr)
			}
			field, _, _ := strings.Cut(ce.Field, "[")
			if !fields[field] || strings.TrimSpace(ce.Reason) == "" || !strings.Contains(verr.Error(), ce.Field) {
				t.Fatalf("Validate: %q names field %q, reason %q", verr, ce.Field, ce.Reason)
			}
			return
		}
		// A valid config writes back as a file that loads the same.
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshalling a valid config: %v", err)
		}
		if err := os.WriteFile(file, out, 0o600); err != nil {
			t.Fatal(err)
		}
		again := base()
		if err := again.LoadFile(file); err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("re-loading %s: %v\ngot  %+v\nwant %+v", out, err, again, c)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("the re-loaded config is invalid: %v", err)
		}
	})
}

// afterFirstValue returns what follows the first JSON value of in, white
// space trimmed ("" when in holds no complete value).
func afterFirstValue(in []byte) string {
	dec := json.NewDecoder(bytes.NewReader(in))
	var v json.RawMessage
	if dec.Decode(&v) != nil {
		return ""
	}
	return strings.TrimSpace(string(in[dec.InputOffset():]))
}
