package raftpersist

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// hashicorp/raft never resolves a Barrier or Apply future that was
		// still queued in its apply channel when it shut down (those futures
		// have no shutdown channel), so waitFuture's helper goroutine for
		// such a future stays blocked. It is bounded by the queue
		// (MaxAppendEntries) and only happens at shutdown.
		goleak.IgnoreTopFunction("github.com/hashicorp/raft.(*deferError).Error"))
}

// strDef is a string state named name, stored as its bytes in storage
// version 1.
type strDef struct {
	dstate.Versions
	name string
}

func (d strDef) Name() string { return d.name }
func (strDef) EncodeState(s string) ([]byte, error) {
	return []byte(s), nil
}
func (strDef) DecodeState(b []byte, v uint32) (string, error) {
	if v != 1 {
		return "", dstate.UnknownVersionError(v)
	}
	return string(b), nil
}

func testLogger() *slog.Logger {
	if os.Getenv("DSTATE_RAFT_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fastConfig is a Config with test timeouts.
func fastConfig(id dstate.NodeID, dir string, ln net.Listener) Config {
	c := DefaultConfig()
	c.NodeID = id
	c.DataDir = dir
	c.Listener = ln
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	c.ApplyTimeout = 5 * time.Second
	c.DialTimeout = time.Second
	c.Logger = testLogger()
	return c
}

// anyOwner lets every node forward saves of any node's envelopes, for
// tests that use node IDs as keys and save them from whichever node they
// pick (by default a node forwards only its own envelopes).
func anyOwner(_ int, c *Config) {
	c.ForwardedSaveAllowed = func(dstate.NodeID, *dstate.StoredEnvelope) bool { return true }
}

// cluster is a test cluster of stores on loopback.
type cluster struct {
	t     testing.TB
	mu    sync.Mutex
	cfgs  []Config
	nodes []*Store // nil when stopped
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	// A just-closed port can take a moment to be reusable.
	eventually(t, 5*time.Second, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, "listen on %s", addr)
	return ln
}

func newCluster(t testing.TB, n int, mod func(i int, c *Config)) *cluster {
	t.Helper()
	c := &cluster{t: t}
	lns := make([]net.Listener, n)
	var boot []Server
	for i := range n {
		lns[i] = listen(t, "127.0.0.1:0")
		boot = append(boot, Server{ID: dstate.NodeID(fmt.Sprintf("n%d", i)), Address: lns[i].Addr().String()})
	}
	base := t.TempDir()
	for i := range n {
		cfg := fastConfig(boot[i].ID, filepath.Join(base, string(boot[i].ID)), lns[i])
		cfg.Bootstrap = boot
		if mod != nil {
			mod(i, &cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	for i := range n {
		s, err := New(c.cfgs[i])
		require.NoError(t, err)
		c.nodes = append(c.nodes, s)
	}
	t.Cleanup(c.closeAll)
	return c
}

func (c *cluster) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, s := range c.nodes {
		if s != nil {
			_ = s.Close()
			c.nodes[i] = nil
		}
	}
}

func (c *cluster) node(i int) *Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// stop closes node i.
func (c *cluster) stop(i int) {
	c.t.Helper()
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	require.NoError(c.t, s.Close())
}

// restart reopens node i from its data dir on its old address.
func (c *cluster) restart(i int) *Store {
	c.t.Helper()
	c.mu.Lock()
	cfg := c.cfgs[i]
	addr := c.addr(i)
	c.mu.Unlock()
	cfg.Listener = listen(c.t, addr)
	s, err := New(cfg)
	require.NoError(c.t, err)
	c.mu.Lock()
	c.nodes[i] = s
	c.mu.Unlock()
	return s
}

func (c *cluster) addr(i int) string {
	for _, b := range c.cfgs[i].Bootstrap {
		if b.ID == c.cfgs[i].NodeID {
			return b.Address
		}
	}
	return c.cfgs[i].BindAddr
}

// leader waits until the running nodes agree on one leader and returns its
// index.
func (c *cluster) leader() int {
	c.t.Helper()
	idx := -1
	eventually(c.t, 10*time.Second, func() bool {
		idx = -1
		var id dstate.NodeID
		for i := range c.nodes {
			s := c.node(i)
			if s == nil {
				continue
			}
			if s.IsLeader() {
				if idx >= 0 {
					return false
				}
				idx = i
			}
			lid, _ := s.Leader()
			if lid == "" || (id != "" && lid != id) {
				return false
			}
			id = lid
		}
		return idx >= 0 && c.node(idx).ID() == id
	}, "a leader all running nodes agree on")
	return idx
}

// follower returns the index of a running non-leader.
func (c *cluster) follower() int {
	l := c.leader()
	for i := range c.nodes {
		if i != l && c.node(i) != nil {
			return i
		}
	}
	c.t.Fatal("no running follower")
	return -1
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for "+format, append([]any{timeout}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// stateOf is the typed persistence of state on the store's own node.
func stateOf(s *Store, state string) dstate.StatePersistence[string] {
	return stateOfNode(s, state, s.ID())
}

// stateOfNode is the typed persistence of state for node through s.
func stateOfNode(s *Store, state string, node dstate.NodeID) dstate.StatePersistence[string] {
	return dstate.PersistenceFor[string](s, node, strDef{dstate.Versions{Wire: 1}, state})
}

// loadAll reads every node's object of state through s, decoded.
func loadAll(ctx context.Context, s *Store, state string) (map[dstate.NodeID]*dstate.StateObject[string], error) {
	envs, err := s.LoadAllEnvelopes(ctx, state)
	if err != nil {
		return nil, err
	}
	out := make(map[dstate.NodeID]*dstate.StateObject[string], len(envs))
	for _, e := range envs {
		out[e.Node] = &dstate.StateObject[string]{Generation: e.Generation, StorageVersion: e.StorageVersion, Value: string(e.Data),
			CreatedUnixMs: e.CreatedUnixMs, ModifiedUnixMs: e.ModifiedUnixMs}
	}
	return out, nil
}

func obj(inc, age uint64, v string) *dstate.StateObject[string] {
	return &dstate.StateObject[string]{Generation: dstate.Generation{Incarnation: inc, Age: age}, StorageVersion: 1, Value: v, CreatedUnixMs: int64(inc), ModifiedUnixMs: int64(inc + age)}
}

// forEachLogStore runs f as a subtest on each log store.
func forEachLogStore(t *testing.T, f func(t *testing.T, store string)) {
	for _, store := range []string{LogStoreBoltDB, LogStoreWAL} {
		t.Run(store, func(t *testing.T) { f(t, store) })
	}
}

// withLogStore sets Config.LogStore to store, then applies mod (if any).
func withLogStore(store string, mod func(i int, c *Config)) func(i int, c *Config) {
	return func(i int, c *Config) {
		c.LogStore = store
		if mod != nil {
			mod(i, c)
		}
	}
}
