package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// TestEveryCommandAgainstATokenlessAgent runs every command that talks to
// the agent against a real agent without a token, the default, whose admin
// API refuses state-changing calls without Content-Type application/json
// (what a browser page could send): the client must send it on every one,
// with a body or without (del, leave).
func TestEveryCommandAgainstATokenlessAgent(t *testing.T) {
	k1, err := serfevents.GenerateKey()
	require.NoError(t, err)
	k2, err := serfevents.GenerateKey()
	require.NoError(t, err)
	keyFile := filepath.Join(t.TempDir(), "keyring")
	require.NoError(t, os.WriteFile(keyFile, []byte(k1+"\n"), 0o600))
	a := startLiveAgent(t, "plain", func(cfg *agent.Config) {
		cfg.BootstrapExpect = 0 // bootstrapped by the command below
		cfg.GossipKeyFile = keyFile
	})
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		code := Main(append([]string{"dstatectl", "--addr", a.HTTPAddr()}, args...), &out, &errOut)
		require.Equal(t, 0, code, "%s: %s", strings.Join(args, " "), errOut.String())
		return out.String()
	}

	var ms []agent.Member
	require.NoError(t, json.Unmarshal([]byte(run("--format", "json", "members")), &ms))
	require.Len(t, ms, 1)
	run("bootstrap")
	require.Eventually(t, func() bool {
		var out, errOut bytes.Buffer
		return Main([]string{"dstatectl", "--addr", a.HTTPAddr(), "put", "--state", "durable-kv", "color", "blue"}, &out, &errOut) == 0
	}, 20*time.Second, 50*time.Millisecond, "durable-kv becomes writable once Raft has a leader")
	run("put", "greeting", "hello")
	require.Contains(t, run("get", "greeting"), "hello")
	run("del", "greeting")
	run("del", "--state", "durable-kv", "color")
	run("dump", "kv")
	run("raft", "peers")
	run("raft", "status")
	run("health")
	require.Contains(t, run("metrics"), "dstate_")
	run("keyring", "install", k2)
	run("keyring", "use", k2)
	run("keyring", "remove", k1)
	require.Contains(t, run("keyring", "list"), k2)
	run("join", ms[0].Addr)
	run("leave")
	select {
	case <-a.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not leave after `dstatectl leave`")
	}
}

// TestClientSendsJSONContentTypeOnStateChangingCalls checks the header
// itself against a recording server: present on every call that is not a
// read, whatever its body.
func TestClientSendsJSONContentTypeOnStateChangingCalls(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Method+" "+r.URL.Path] = r.Header.Get("Content-Type")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	for _, args := range [][]string{{"leave"}, {"del", "k"}, {"bootstrap"}, {"put", "k", "v"}, {"members"}} {
		var out, errOut bytes.Buffer
		Main(append([]string{"dstatectl", "--addr", srv.URL}, args...), &out, &errOut)
	}
	mu.Lock()
	require.Equal(t, map[string]string{
		"POST /v1/leave":          "application/json",
		"DELETE /v1/kv/k":         "application/json",
		"POST /v1/raft/bootstrap": "application/json",
		"PUT /v1/kv/k":            "application/octet-stream",
		"GET /v1/members":         "",
	}, got)
	mu.Unlock()
}
