package agent

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dstate-go/dstate/internal/ratelog"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/localpersist"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// Agent is one running node: runtime, transport, membership, Raft (on
// servers), the host with the built-in states, and the admin API.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	clock   dstate.Clock
	started time.Time

	rt       *gosched.Runtime
	tr       *transport.Transport
	gossip   *serfGossip
	raft     *raftConsensus // nil unless cfg.Server
	local    *localpersist.DB
	node     *node.Node
	registry *prometheus.Registry

	kv        *node.DeltaShard[KV, KV, KVChange, KVChange]
	durableKV *node.DeltaShard[KV, KV, KVChange, KVChange] // nil without Raft
	// durableErr is why durable-kv is not registered yet (durable.go).
	durableErr error
	load       *node.Shard[Load, Load]
	faults     *faultSet                                    // nil unless FaultDrop or TestFaults
	testLoad   *node.DeltaShard[KV, KV, KVChange, KVChange] // nil unless TestLoadRate
	loadStats  loadStats

	oversizedRequests atomic.Uint64   // admin requests over max_request_bytes
	requestLog        ratelog.Limiter // one oversized-request warning per host per interval

	httpLn    net.Listener
	httpSrv   *http.Server
	httpConns *connLimiter // the admin API's connection caps and counts

	mu     sync.Mutex
	states map[string]stateHandle

	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{}
	bg       sync.WaitGroup
	bgStop   chan struct{}

	// leaveOnce guards the graceful leave (leave.go) that Stop and
	// POST /v1/leave share.
	leaveOnce sync.Once
	// stopping is set when a stop or leave begins: the liveness and
	// readiness probes then fail (health.go).
	stopping atomic.Bool
	leaveRes LeaveResult
	leaveErr error
}

// Start validates cfg, creates the data dir (or makes it private, see
// files.go), starts every component, joins the seeds and serves the admin
// API. It is all or nothing: every listener is bound, every file opened and
// the TLS material loaded before the agent joins the seeds, so a start that
// fails (a port in use, an unreadable key, a data dir that is not one) has
// made no other node see this one; everything it started is stopped again,
// and should a step fail after gossip started it leaves gracefully.
func Start(ctx context.Context, cfg Config) (_ *Agent, err error) {
	return start(ctx, cfg, os.Stderr)
}

// start is Start logging to logOut.
func start(ctx context.Context, cfg Config, logOut io.Writer) (_ *Agent, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := resolveAdminToken(&cfg); err != nil {
		return nil, err
	}
	log, err := newLogger(cfg, logOut)
	if err != nil {
		return nil, err
	}
	log = log.With("node", cfg.NodeID)
	if err := prepareDataDir(cfg.DataDir, log); err != nil {
		return nil, err
	}
	warnLooseSecretFiles(cfg, log)
	a := &Agent{
		cfg: cfg, log: log, clock: dstate.SystemClock{}, started: time.Now(),
		states: map[string]stateHandle{}, stopped: make(chan struct{}), bgStop: make(chan struct{}),
		registry: prometheus.NewRegistry(),
	}
	defer func() {
		if err != nil {
			a.abortStart()
		}
	}()
	if err = a.startParts(ctx); err != nil {
		return nil, err
	}
	makePrivate(cfg.DataDir, a.log) // what the components created open to others (raft/snapshots)
	return a, nil
}

// abortStart undoes a failed start: a node whose gossip already runs
// (serf may have rejoined the members of an earlier run from its snapshot)
// leaves gracefully, so no member is left behind as failed, then every
// component is stopped.
func (a *Agent) abortStart() {
	if a.gossip != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.gossip.leave(ctx); err != nil {
			a.log.Warn("leaving after a failed start", "err", err)
		}
		cancel()
	}
	_ = a.teardown(context.Background())
}

// startParts starts the components in an order that binds and opens
// everything (the admin API's listener first, then the transport, the
// local store and Raft, then serf) before the seeds are joined, last.
func (a *Agent) startParts(ctx context.Context) error {
	cfg := a.cfg
	installLibraryMetrics(a)
	if err := a.listenHTTP(); err != nil {
		return err
	}
	rcfg := gosched.DefaultConfig()
	rcfg.Logger = a.log
	rt, err := gosched.New(rcfg)
	if err != nil {
		return err
	}
	a.rt = rt

	tcfg := transport.DefaultConfig()
	tcfg.NodeID, tcfg.ClusterName, tcfg.BindAddr, tcfg.AdvertiseAddr, tcfg.Logger = dstate.NodeID(cfg.NodeID), cfg.ClusterName, cfg.TransportAddr, cfg.TransportAdvertise, a.log
	if cfg.Fast {
		tcfg.ReconnectBackoffMin, tcfg.ReconnectBackoffMax = 20*time.Millisecond, 500*time.Millisecond
	}
	applyTransportLimits(cfg, &tcfg)
	if cfg.TLSCertFile != "" {
		if tcfg.TLS, err = loadTLS(cfg); err != nil {
			return err
		}
	}
	if len(cfg.FaultDrop) > 0 || cfg.TestFaults {
		a.faults = newFaultSet(cfg.FaultDrop)
		tcfg.FaultHook = a.faults.allow
	}
	if a.tr, err = transport.New(tcfg); err != nil {
		return fmt.Errorf("agent: transport_addr %s: %w", cfg.TransportAddr, err)
	}

	if a.local, err = localpersist.Open(filepath.Join(cfg.DataDir, "states.db"), localpersist.Options{}); err != nil {
		return fmt.Errorf("agent: data_dir %s: %w", cfg.DataDir, err)
	}
	stores := map[dstate.Durability]dstate.EnvelopeStore{dstate.Local: a.local}
	if cfg.Server {
		if a.raft, err = openConsensus(a); err != nil {
			return err
		}
		stores[dstate.Raft] = a.raft.store
	}
	if a.gossip, err = startGossip(a); err != nil {
		return err
	}
	if a.raft != nil {
		if err := a.raft.attach(); err != nil {
			return err
		}
	}
	ncfg := node.Config{ID: dstate.NodeID(cfg.NodeID), Runtime: a.rt, Events: a.gossip, Transport: a.tr, Logger: a.log, Stores: stores}
	applyNodeLimits(cfg, &ncfg)
	if cfg.Fast {
		ncfg.FeedInterval = 50 * time.Millisecond
	}
	ncfg.DigestInterval = time.Duration(cfg.DigestInterval)
	if a.node, err = node.New(ncfg); err != nil {
		return err
	}
	if err := a.registerBuiltins(ctx); err != nil {
		return err
	}
	a.registerMetrics()
	a.serveHTTP()
	if len(cfg.Join) > 0 {
		a.joinSeeds()
	}
	a.log.Info("agent started", "transport", a.tr.Addr(), "http", a.HTTPAddr(), "server", cfg.Server)
	return nil
}

// registerBuiltins registers kv (Local), load (Memory) and, with Raft,
// durable-kv.
func (a *Agent) registerBuiltins(ctx context.Context) error {
	stateCfg := func(d dstate.Durability) dstate.StateConfig {
		c := dstate.DefaultStateConfig()
		c.Durability = d
		// Digests (node.Config.DigestInterval) repair lost updates; a blind
		// full broadcast only when configured.
		c.SyncStrategy.PeriodicFullSync = time.Duration(a.cfg.FullSyncInterval)
		if a.cfg.Fast {
			c.PullTimeout = time.Second
		}
		return c
	}
	var err error
	if a.kv, err = RegisterDelta(ctx, a, KVDef{StateName: KVState, Wire: a.cfg.TestKVWireVersion}, node.StateOptions[KV]{Config: stateCfg(dstate.Local), Initial: KV{}}); err != nil {
		return fmt.Errorf("agent: register %s: %w", KVState, err)
	}
	if a.raft != nil {
		// Registering loads the state through Raft, which needs a leader:
		// on a cluster still forming that waits for the other servers, so
		// it happens in the background and durable-kv answers "not ready"
		// until then.
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			a.registerDurableKV(stateCfg(dstate.Raft))
		}()
	}
	if a.cfg.TestLoadRate > 0 {
		if err := a.startTestLoad(ctx, stateCfg(dstate.Memory)); err != nil {
			return err
		}
	}
	lcfg := stateCfg(dstate.Memory)
	lcfg.SyncStrategy = dstate.PeriodicOnlyStrategy(time.Duration(a.cfg.LoadInterval))
	if a.cfg.LoadInterval <= 0 {
		lcfg.SyncStrategy = dstate.PeriodicOnlyStrategy(time.Second)
	}
	if a.load, err = Register(ctx, a, LoadDef{}, node.StateOptions[Load]{Config: lcfg, Initial: sampleLoad(a.started, time.Now())}); err != nil {
		return fmt.Errorf("agent: register %s: %w", LoadState, err)
	}
	interval := lcfg.SyncStrategy.PeriodicFullSync
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-a.bgStop:
				return
			case now := <-t.C:
				l := sampleLoad(a.started, now)
				ctx, cancel := context.WithTimeout(context.Background(), interval)
				_, _, _ = a.load.MutateWith(ctx, dstate.Suppress, func(s *Load) { *s = l })
				cancel()
			}
		}
	}()
	return nil
}

// joinSeeds joins cfg.Join, the last step of a start: one bounded attempt,
// then, when no seed answered (seeds may come up later), retries in the
// background until one does or the agent stops.
func (a *Agent) joinSeeds() {
	_, err := a.gossip.join(a.cfg.Join)
	if err == nil {
		return
	}
	a.log.Warn("initial join failed; retrying in the background", "seeds", a.cfg.Join, "err", err)
	ctx, cancel := context.WithCancel(context.Background())
	a.bg.Add(2)
	go func() {
		defer a.bg.Done()
		select {
		case <-a.bgStop:
		case <-ctx.Done():
		}
		cancel()
	}()
	go func() {
		defer a.bg.Done()
		defer cancel()
		_, _ = a.gossip.Membership.Join(ctx, a.cfg.Join)
	}()
}

// listenHTTP loads the admin API's TLS material and binds its listener;
// serveHTTP serves it once the agent is complete.
func (a *Agent) listenHTTP() error {
	tlsCfg, err := httpTLS(a.cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("agent: http_addr %s: %w", a.cfg.HTTPAddr, err)
	}
	a.httpConns = newConnLimiter(a.cfg, a.log, ln)
	ln = a.httpConns
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	a.httpLn = ln
	return nil
}

// serveHTTP serves the admin API on the listener listenHTTP bound.
func (a *Agent) serveHTTP() {
	ln := a.httpLn
	a.httpSrv = a.newHTTPServer()
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		if err := a.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("admin API stopped", "err", err)
		}
	}()
}

// HTTPAddr returns the admin API's listening address.
func (a *Agent) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// TransportAddr returns the state transport's address.
func (a *Agent) TransportAddr() string { return a.tr.Addr() }

// Node returns the host, for embedding applications that register their
// own states with node.Register (use agent.Register to have the admin API
// list them too).
func (a *Agent) Node() *node.Node { return a.node }

// ID returns the node ID.
func (a *Agent) ID() string { return a.cfg.NodeID }

// Done is closed when the agent has stopped (after Stop or a leave
// through the admin API).
func (a *Agent) Done() <-chan struct{} { return a.stopped }

// Stop leaves the cluster gracefully, flushes queued frames and stops
// every component, bounded by ctx. A server leaves the Raft configuration
// before its components stop (handing leadership over when it leads),
// within leave_timeout; when the cluster cannot remove it, Stop still stops
// and returns an error matching [ErrLeave] (see leave.go). Later calls
// return the first result.
func (a *Agent) Stop(ctx context.Context) error {
	a.stopOnce.Do(func() {
		a.stopping.Store(true)
		_, leaveErr := a.leaveCluster(ctx)
		if leaveErr != nil {
			a.log.Error("leaving the Raft configuration failed; stopping anyway", "err", leaveErr)
		}
		a.stopErr = errors.Join(leaveErr, a.teardown(ctx))
		a.log.Info("agent stopped")
		close(a.stopped)
	})
	<-a.stopped
	return a.stopErr
}

// teardown stops what was started, in reverse order.
func (a *Agent) teardown(ctx context.Context) error {
	var errs []error
	if a.httpSrv != nil {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := a.httpSrv.Shutdown(sctx); err != nil {
			_ = a.httpSrv.Close()
		}
		cancel()
	} else if a.httpLn != nil {
		_ = a.httpLn.Close() // bound by a start that failed before serving
	}
	select {
	case <-a.bgStop:
	default:
		close(a.bgStop)
	}
	if a.node != nil {
		errs = append(errs, a.node.Close(ctx))
	} else if a.tr != nil {
		errs = append(errs, a.tr.Close(ctx))
	}
	if a.gossip != nil {
		errs = append(errs, a.gossip.shutdown())
	}
	if a.raft != nil {
		errs = append(errs, a.raft.close())
	}
	if a.local != nil {
		errs = append(errs, a.local.Close())
	}
	if a.rt != nil {
		a.rt.Close()
	}
	a.bg.Wait()
	makePrivate(a.cfg.DataDir, a.log) // Raft snapshots taken while it ran
	return errors.Join(errs...)
}

// Members lists the gossip members, sorted by name.
func (a *Agent) Members() []Member {
	ms := a.gossip.members()
	slices.SortFunc(ms, func(x, y Member) int { return cmp.Compare(x.Name, y.Name) })
	return ms
}

// Join joins the cluster through the given gossip addresses and returns
// how many were reached.
func (a *Agent) Join(addrs []string) (int, error) { return a.gossip.join(addrs) }

// kvShard returns the shard of a kv state by name.
func (a *Agent) kvShard(state string) (*node.DeltaShard[KV, KV, KVChange, KVChange], error) {
	switch state {
	case KVState:
		return a.kv, nil
	case TestLoadState:
		a.mu.Lock()
		s := a.testLoad
		a.mu.Unlock()
		if s == nil {
			return nil, fmt.Errorf("%w: state %q runs only on agents started with a test load", errNotEnabled, state)
		}
		return s, nil
	case DurableKVState:
		if a.raft == nil {
			return nil, fmt.Errorf("%w: state %q needs Raft; this agent is not a server", errNotEnabled, state)
		}
		a.mu.Lock()
		s := a.durableKV
		a.mu.Unlock()
		if s == nil {
			return nil, a.durableNotReady()
		}
		return s, nil
	}
	return nil, badRequest{fmt.Errorf("state %q is not a kv state (kv or durable-kv)", state)}
}

// GetKV returns key as node (default: this agent) holds it in a kv state.
func (a *Agent) GetKV(state, nodeID, key string) (KVValue, error) {
	s, err := a.kvShard(state)
	if err != nil {
		return KVValue{}, err
	}
	if nodeID == "" {
		nodeID = a.cfg.NodeID
	}
	v, ok := s.Views().Get(dstate.NodeID(nodeID))
	if !ok {
		return KVValue{}, fmt.Errorf("%w: this agent holds no view of node %q in %s", errNotFound, nodeID, state)
	}
	val, found := v.Value[key]
	return KVValue{State: state, Node: nodeID, Key: key, Value: val, Found: found, Generation: v.Generation.String()}, nil
}

// WriteKV applies a write to this agent's own map in a kv state.
func (a *Agent) WriteKV(ctx context.Context, state string, c KVChange) (WriteResult, error) {
	if c.Key == "" {
		return WriteResult{}, badRequest{errors.New("the key is empty")}
	}
	// The kv states are JSON on the wire and on disk, where invalid UTF-8
	// would silently become U+FFFD: peers and the next start would hold
	// another key or value than this node.
	if !utf8.ValidString(c.Key) || !utf8.ValidString(c.Value) {
		return WriteResult{}, badRequest{errors.New("the key and the value must be valid UTF-8")}
	}
	s, err := a.kvShard(state)
	if err != nil {
		return WriteResult{}, err
	}
	gen, _, err := s.MutateDelta(ctx, func(m *KV) KVChange {
		if *m == nil {
			*m = KV{}
		}
		applyKV(*m, c)
		return c
	})
	if err != nil {
		return WriteResult{}, err
	}
	return WriteResult{State: state, Node: a.cfg.NodeID, Key: c.Key, Generation: gen.String()}, nil
}

// RaftStatus describes the Raft group (Enabled false on non-servers).
func (a *Agent) RaftStatus(ctx context.Context) (RaftStatus, error) {
	if a.raft == nil {
		return RaftStatus{Enabled: false}, nil
	}
	return a.raft.status(ctx)
}

// Bootstrap bootstraps the Raft group with servers ("id=addr" entries; none
// means this agent alone). Bootstrapping a group that already has a
// configuration is not an error.
func (a *Agent) Bootstrap(ctx context.Context, servers []string) error {
	if a.raft == nil {
		return fmt.Errorf("%w: bootstrap needs a server agent", errNotEnabled)
	}
	return a.raft.bootstrap(ctx, servers)
}

// Keyring lists the gossip keys.
func (a *Agent) Keyring() (KeyringStatus, error) { return a.gossip.keyring() }

// KeyringOp installs, uses or removes a gossip key across the cluster.
func (a *Agent) KeyringOp(op, key string) error { return a.gossip.keyringOp(op, key) }
