package agent_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// sseEvent is one event of a watch stream.
type sseEvent struct {
	id     string
	change agent.StateChange
}

// openWatch opens a watch stream and returns its events on a channel
// (closed when the stream ends) and the response's status.
func openWatch(t *testing.T, base, path, lastID, token string) (<-chan sseEvent, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	require.NoError(t, err)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	ch := make(chan sseEvent, 1024)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		close(ch)
		close(done)
		return ch, resp.StatusCode
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	go func() {
		defer close(done)
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					if json.Unmarshal([]byte(data), &ev.change) == nil {
						ch <- ev
					}
				}
				ev, data = sseEvent{}, ""
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch, resp.StatusCode
}

func nextEvent(t *testing.T, ch <-chan sseEvent, what string) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		require.True(t, ok, "the stream ended before %s", what)
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10 s", what)
	}
	return sseEvent{}
}

// TestWatchStream: the watch endpoint lists the view as it stands, streams
// a write, outlives the server's read and write timeouts, and resumes
// from Last-Event-ID without listing again.
func TestWatchStream(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.HTTPReadTimeout, cfg.HTTPWriteTimeout = agent.Duration(500*time.Millisecond), agent.Duration(500*time.Millisecond)
	a := startAgent(t, cfg)
	base := "http://" + a.HTTPAddr()
	c := apiClient{t: t, base: base}
	code, body := c.call(http.MethodPut, "/v1/kv/greeting", "hello")
	require.Equal(t, http.StatusOK, code, body)

	events, status := openWatch(t, base, "/v1/states/kv/watch", "", "")
	require.Equal(t, http.StatusOK, status)
	ev := nextEvent(t, events, "the view as it stands")
	require.True(t, ev.change.Initial)
	require.Equal(t, "n1", ev.change.Node)
	require.Equal(t, map[string]any{"greeting": "hello"}, ev.change.Value)

	// Longer than both timeouts: the stream stays open (this wait is the
	// scenario, not a synchronization).
	select {
	case ev, ok := <-events:
		t.Fatalf("unexpected event or end of stream while idle: %+v %v", ev, ok)
	case <-time.After(1500 * time.Millisecond):
	}
	code, body = c.call(http.MethodPut, "/v1/kv/greeting", "bonjour")
	require.Equal(t, http.StatusOK, code, body)
	ev = nextEvent(t, events, "the write")
	require.False(t, ev.change.Initial)
	require.Equal(t, "updated", ev.change.Kind)
	require.Equal(t, map[string]any{"greeting": "bonjour"}, ev.change.Value)
	require.Contains(t, ev.id, "n1=v")
	lastID := ev.id

	// Resuming lists nothing already seen; the next write comes.
	resumed, status := openWatch(t, base, "/v1/states/kv/watch", lastID, "")
	require.Equal(t, http.StatusOK, status)
	code, body = c.call(http.MethodPut, "/v1/kv/greeting", "hallo")
	require.Equal(t, http.StatusOK, code, body)
	ev = nextEvent(t, resumed, "the write after resuming")
	require.False(t, ev.change.Initial, "a resumed stream does not list the views again")
	require.Equal(t, map[string]any{"greeting": "hallo"}, ev.change.Value)
}

// TestWatchStreamErrors: an unknown state, a bad resume token, a bad
// parameter and a missing token are refused with a clear error.
func TestWatchStreamErrors(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.AdminToken = "s3cret"
	a := startAgent(t, cfg)
	base := "http://" + a.HTTPAddr()
	for _, tc := range []struct {
		path, lastID, token string
		want                int
	}{
		{"/v1/states/nope/watch", "", "s3cret", http.StatusNotFound},
		{"/v1/states/kv/watch", "n1=garbage", "s3cret", http.StatusBadRequest},
		{"/v1/states/kv/watch?every=maybe", "", "s3cret", http.StatusBadRequest},
		{"/v1/states/kv/watch", "", "", http.StatusUnauthorized},
	} {
		_, status := openWatch(t, base, tc.path, tc.lastID, tc.token)
		require.Equal(t, tc.want, status, "%s (Last-Event-ID %q)", tc.path, tc.lastID)
	}
	_, err := agent.ParseResumeToken("n1=v1:2,n2=v3")
	require.ErrorContains(t, err, `resume token entry for "n2"`)
	toks, err := agent.ParseResumeToken(agent.FormatResumeToken(map[string]dstate.Generation{"b": {Incarnation: 2, Age: 5}, "a": {Incarnation: 1, Age: 1}}))
	require.NoError(t, err)
	require.Len(t, toks, 2)
}

// TestStalledWatchersDoNotSlowWrites: watch streams whose clients never
// read do not hold up writes.
func TestStalledWatchersDoNotSlowWrites(t *testing.T) {
	a := startAgent(t, testConfig(t, "n1"))
	base := "http://" + a.HTTPAddr()
	for range 8 {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/states/kv/watch?every=true", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		// Never read from resp.Body.
	}
	big := strings.Repeat("x", 4096)
	deadline := time.Now().Add(60 * time.Second) // liveness, not a bound
	for i := range 2000 {
		_, err := a.WriteKV(context.Background(), agent.KVState, agent.KVChange{Key: "k", Value: big + string(rune('a'+i%26))})
		require.NoError(t, err)
		require.True(t, time.Now().Before(deadline), "writes stalled behind watchers that do not read")
	}
}
