package serfevents_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// testLogger discards logs unless SERFEVENTS_LOG is "debug", "info" or
// "warn" (then they go to stderr). Logs never go to t.Log: serf may log
// after a test returns.
func testLogger() *slog.Logger {
	var level slog.Level
	switch os.Getenv("SERFEVENTS_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	default:
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// waitFor is the patience of every poll: generous, as -race on two cores is
// slow; a passing poll returns as soon as its condition holds.
const waitFor = 15 * time.Second

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, waitFor, 10*time.Millisecond, what)
}

// testConfig is LocalConfig for node id with a snapshot in dir.
func testConfig(id dstate.NodeID, dir string) serfevents.Config {
	c := serfevents.LocalConfig()
	c.NodeID = id
	c.Logger = testLogger()
	c.SnapshotPath = filepath.Join(dir, string(id)+".snapshot")
	c.Tags = map[string]string{serfevents.TagTransport: "127.0.0.1:1" + string(id[len(id)-1])}
	return c
}

// start starts a Membership and shuts it down when the test ends.
func start(t testing.TB, cfg serfevents.Config) *serfevents.Membership {
	t.Helper()
	m, err := serfevents.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// recorder is a subscriber that records every event.
type recorder struct {
	mu  sync.Mutex
	evs []dstate.ClusterEvent
}

func subscribe(t testing.TB, m *serfevents.Membership) *recorder {
	t.Helper()
	r := &recorder{}
	_, err := m.Subscribe(r.add)
	require.NoError(t, err)
	return r
}

func (r *recorder) add(ev dstate.ClusterEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) events() []dstate.ClusterEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.evs)
}

// find returns the first event at or after index from of the kind for
// node, and its index.
func (r *recorder) find(from int, kind dstate.ClusterEventKind, node dstate.NodeID) (dstate.ClusterEvent, int, bool) {
	evs := r.events()
	for i := from; i < len(evs); i++ {
		if evs[i].Kind == kind && evs[i].Node == node {
			return evs[i], i, true
		}
	}
	return dstate.ClusterEvent{}, -1, false
}

func (r *recorder) has(from int, kind dstate.ClusterEventKind, node dstate.NodeID) bool {
	_, _, ok := r.find(from, kind, node)
	return ok
}

// cluster is three Memberships n1, n2, n3; n2 and n3 know only n1's
// address. Each has a recorder subscribed before any join.
type cluster struct {
	t    testing.TB
	dir  string
	cfgs map[dstate.NodeID]serfevents.Config
	ms   map[dstate.NodeID]*serfevents.Membership
	recs map[dstate.NodeID]*recorder
}

var ids = []dstate.NodeID{"n1", "n2", "n3"}

func newCluster(t testing.TB, mutate func(*serfevents.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), cfgs: map[dstate.NodeID]serfevents.Config{},
		ms: map[dstate.NodeID]*serfevents.Membership{}, recs: map[dstate.NodeID]*recorder{}}
	var seed string
	for _, id := range ids {
		cfg := testConfig(id, c.dir)
		if seed != "" {
			cfg.Seeds = []string{seed}
		}
		if mutate != nil {
			mutate(&cfg)
		}
		c.startNode(id, cfg)
		if seed == "" {
			seed = c.ms[id].LocalNode().Addr
		}
	}
	c.waitAlive(ids...)
	return c
}

// startNode starts id with cfg and subscribes a fresh recorder.
func (c *cluster) startNode(id dstate.NodeID, cfg serfevents.Config) {
	c.t.Helper()
	m := start(c.t, cfg)
	// Restarts keep the port they got the first time.
	cfg.BindAddr = m.LocalNode().Addr
	c.cfgs[id] = cfg
	c.ms[id] = m
	c.recs[id] = subscribe(c.t, m)
}

// waitAlive waits until every running node sees each of want alive.
func (c *cluster) waitAlive(want ...dstate.NodeID) {
	c.t.Helper()
	for obs, m := range c.ms {
		for _, id := range want {
			eventually(c.t, string(obs)+" sees "+string(id)+" alive", func() bool {
				return statusOf(m, id) == serfevents.StatusAlive
			})
		}
	}
}

func statusOf(m *serfevents.Membership, id dstate.NodeID) serfevents.MemberStatus {
	for _, mem := range m.Members() {
		if mem.ID == id {
			return mem.Status
		}
	}
	return 0
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func contextWithTimeout(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithTimeout(context.Background(), d)
}
