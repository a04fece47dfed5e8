package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// TestClientSeesTheServersTimeoutError: dstatectl tells the agent its
// --timeout and waits a little longer, so an agent that gives up at that
// deadline is heard ("lost quorum ...") instead of "raise --timeout?".
// The fake agent answers at the deadline the request announces, or after
// a minute when it announces none.
func TestClientSeesTheServersTimeoutError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := time.Minute
		if d, err := time.ParseDuration(r.Header.Get(agent.TimeoutHeader)); err == nil {
			wait = d
		}
		select {
		case <-time.After(wait): // the agent's own deadline
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(agent.APIError{Error: "raftpersist: lost quorum: 1 of 3 voters reachable, 2 needed"})
	}))
	t.Cleanup(srv.Close)
	var out, errOut bytes.Buffer
	code := Main([]string{"dstatectl", "--addr", srv.URL, "--timeout", "300ms", "put", "--state", "durable-kv", "k", "v"}, &out, &errOut)
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut.String(), "503")
	require.Contains(t, errOut.String(), "lost quorum: 1 of 3 voters reachable")
	require.NotContains(t, errOut.String(), "raise --timeout")
}

// TestDurableKVWithoutALeaderNamesIt: against a real server waiting for
// bootstrap-expect, a durable write fails with the agent's "no Raft
// leader yet".
func TestDurableKVWithoutALeaderNamesIt(t *testing.T) {
	a := startLiveAgent(t, "alone", func(cfg *agent.Config) { cfg.BootstrapExpect = 3 })
	var errOut string
	require.Eventually(t, func() bool {
		var out, e bytes.Buffer
		code := Main([]string{"dstatectl", "--addr", a.HTTPAddr(), "put", "--state", "durable-kv", "k", "v"}, &out, &e)
		errOut = e.String()
		return code != 0 && strings.Contains(errOut, "no Raft leader yet")
	}, 20*time.Second, 20*time.Millisecond, "the CLI names the missing leader")
	require.Contains(t, errOut, "503")
}
