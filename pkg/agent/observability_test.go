package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// logRecorder keeps every line an agent logs (JSON), safe for concurrent
// writes.
type logRecorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *logRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

// lines returns the lines logged so far, and forgets them.
func (r *logRecorder) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Split(strings.TrimRight(r.buf.String(), "\n"), "\n")
	r.buf.Reset()
	if len(s) == 1 && s[0] == "" {
		return nil
	}
	return s
}

// observedNode is an agent of the observability tests with its log.
type observedNode struct {
	a   *Agent
	log *logRecorder
}

// startObservedCluster starts n servers on loopback that log everything
// from info up (raft's lines too) as JSON to recorders.
func startObservedCluster(t *testing.T, n int) []observedNode {
	t.Helper()
	var nodes []observedNode
	for i := range n {
		c := DefaultConfig()
		c.NodeID, c.DataDir, c.Fast = fmt.Sprintf("n%d", i+1), t.TempDir(), true
		c.SerfAddr, c.TransportAddr, c.RaftAddr, c.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		c.BootstrapExpect = n
		c.LogLevel, c.RaftLogLevel, c.LogFormat = "info", "info", "json"
		c.LoadInterval = Duration(100 * time.Millisecond)
		if i > 0 {
			c.Join = []string{nodes[0].a.gossip.members()[0].Addr}
		}
		rec := &logRecorder{}
		a, err := Start(context.Background(), c, withLogOutput(rec))
		require.NoError(t, err)
		nodes = append(nodes, observedNode{a: a, log: rec})
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_ = nd.a.Stop(ctx)
			cancel()
		}
	})
	ctx := context.Background()
	require.Eventually(t, func() bool {
		for _, nd := range nodes {
			if !nd.a.Ready().Ready {
				return false
			}
		}
		_, err := nodes[n-1].a.WriteKV(ctx, DurableKVState, KVChange{Key: "d", Value: "x"})
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "every node ready and a durable write")
	_, err := nodes[0].a.WriteKV(ctx, KVState, KVChange{Key: "k", Value: "v"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		for _, nd := range nodes {
			if v, err := nd.a.GetKV(KVState, "n1", "k"); err != nil || v.Value != "v" {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "every node holds n1's k")
	return nodes
}

func scrape(t *testing.T, a *Agent) string {
	t.Helper()
	resp, err := http.Get("http://" + a.HTTPAddr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}

func families(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	require.NoError(t, err)
	return mfs
}

func leaderOf(t *testing.T, nodes []observedNode) observedNode {
	t.Helper()
	for _, nd := range nodes {
		if nd.a.raft.store.IsLeader() {
			return nd
		}
	}
	t.Fatal("no leader")
	return observedNode{}
}

// TestObservability runs a three-server cluster and checks what an
// operator watches it with: the metrics follow Prometheus conventions
// (promlint finds nothing), the per-peer gauges are there, the dashboard
// asks only for exported metrics, a log line names each attribute once,
// and a graceful stop logs no ERROR line.
func TestObservability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three agents")
	}
	nodes := startObservedCluster(t, 3)
	leader := leaderOf(t, nodes)

	exported := map[string]bool{}
	t.Run("metrics pass promlint", func(t *testing.T) {
		for _, nd := range nodes {
			scrape(t, nd.a) // so the request counters have one
			text := scrape(t, nd.a)
			problems, err := promlint.New(strings.NewReader(text)).Lint()
			require.NoError(t, err)
			for _, p := range problems {
				t.Errorf("%s: %s: %s", nd.a.ID(), p.Metric, p.Text)
			}
			for name := range families(t, text) {
				exported[name] = true
			}
		}
	})

	t.Run("peer gauges", func(t *testing.T) {
		mfs := families(t, scrape(t, leader.a))
		has := func(name string, labels ...string) bool {
			mf := mfs[name]
			if mf == nil {
				return false
			}
			for _, m := range mf.GetMetric() {
				var got []string
				for _, l := range m.GetLabel() {
					got = append(got, l.GetName()+"="+l.GetValue())
				}
				if !slices.ContainsFunc(labels, func(l string) bool { return !slices.Contains(got, l) }) {
					return true
				}
			}
			return false
		}
		for _, other := range nodes {
			if other.a == leader.a {
				continue
			}
			peer := "peer=" + other.a.ID()
			require.True(t, has("dstate_view_age_seconds", "state=kv", peer), "view age of %s", peer)
			require.True(t, has("dstate_view_generation_lag", "state=kv", peer), "generation lag of %s", peer)
			require.True(t, has("dstate_raft_follower_trails_by_entries", peer), "trails-by of %s", peer)
			require.True(t, has("dstate_raft_follower_last_contact_seconds", peer), "last contact of %s", peer)
			require.True(t, has("dstate_raft_replication_append_entries_rpc_seconds", peer), "raft's per-peer timer as a label")
		}
		require.Equal(t, 1.0, mfs["dstate_raft_is_leader"].GetMetric()[0].GetGauge().GetValue())
		require.True(t, has("dstate_transport_received_bytes_total"))
		require.True(t, has("dstate_http_requests_total", "route=/metrics", "code=200"))
		for name := range mfs {
			require.NotRegexp(t, `_n[0-9]+(_|$)`, name, "a peer ID inside a metric name")
		}
	})

	t.Run("dashboard queries exported metrics", func(t *testing.T) {
		names := dashboardMetrics(t, "../../dashboards/dstate.json")
		require.NotEmpty(t, names)
		for _, name := range names {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && exported[b] {
					base = b
				}
			}
			require.True(t, exported[base], "the dashboard queries %s, which no agent exports", name)
		}
	})

	t.Run("log attributes are unique", func(t *testing.T) {
		for _, nd := range nodes {
			lines := nd.log.lines()
			require.NotEmpty(t, lines)
			for _, line := range lines {
				if dup := repeatedKey(t, line); dup != "" {
					t.Errorf("%s: %q repeats in %s", nd.a.ID(), dup, line)
				}
			}
		}
	})

	t.Run("graceful stop logs no error", func(t *testing.T) {
		// A follower stops, then the leader: the others see them go.
		var follower observedNode
		for _, nd := range nodes {
			if nd.a != leader.a {
				follower = nd
				break
			}
		}
		for _, nd := range []observedNode{follower, leader} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			require.NoError(t, nd.a.Stop(ctx))
			cancel()
		}
		for _, nd := range nodes {
			for _, line := range nd.log.lines() {
				var rec struct{ Level string }
				require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
				if rec.Level == "ERROR" {
					t.Errorf("%s logged an error during a graceful stop: %s", nd.a.ID(), line)
				}
			}
		}
	})
}

// repeatedKey returns a key that appears twice at the top level of a JSON
// log line, or "".
func repeatedKey(t *testing.T, line string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	tok, err := dec.Token()
	require.NoError(t, err, line)
	require.Equal(t, json.Delim('{'), tok, line)
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		require.NoError(t, err, line)
		key := tok.(string)
		if seen[key] {
			return key
		}
		seen[key] = true
		var v json.RawMessage
		require.NoError(t, dec.Decode(&v), line)
	}
	return ""
}

// PromQL words that are not metric names.
var promqlWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
}

var (
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlBraces   = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
)

// dashboardMetrics returns the metric names the PromQL expressions of a
// Grafana dashboard (its panels' targets' "expr") query.
func dashboardMetrics(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc any
	require.NoError(t, json.Unmarshal(b, &doc))
	var exprs []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	seen := map[string]bool{}
	var names []string
	for _, e := range exprs {
		e = promqlStrings.ReplaceAllString(e, `""`)
		e = promqlBraces.ReplaceAllString(e, " ")
		e = promqlRanges.ReplaceAllString(e, " ")
		e = promqlGrouping.ReplaceAllString(e, " ")
		for _, m := range promqlIdent.FindAllString(e, -1) {
			if strings.HasSuffix(m, "(") || promqlWords[strings.ToLower(m)] || strings.HasPrefix(m, "$") {
				continue // a function, a keyword
			}
			if !seen[m] {
				seen[m] = true
				names = append(names, m)
			}
		}
	}
	// A line-oriented sanity check: every expression named something.
	sc := bufio.NewScanner(strings.NewReader(strings.Join(exprs, "\n")))
	for sc.Scan() {
		require.Regexp(t, `dstate_|up\b`, sc.Text(), "an expression without a metric")
	}
	return names
}
