package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/localpersist"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// Agent is one running node: runtime, transport, membership, Raft (on
// servers), the host with the built-in states, and the admin API. The
// Agent assembles the parts and runs their lifecycle; the built-in states
// are on their own type (builtins.go), and so is the admin HTTP server
// (apiServer in http.go), which calls the agent through a narrow interface.
type Agent struct {
	cfg     Config
	hooks   TestHooks
	log     *slog.Logger
	clock   dstate.Clock
	started time.Time

	// rt runs the state actors: the application's (WithRuntime), or a
	// gosched runtime of the agent's own, ownRT, which it closes.
	rt       dstate.ActorRuntime
	ownRT    *gosched.Runtime
	tr       *transport.Transport
	gossip   *serfGossip
	raft     *raftConsensus // nil unless cfg.Server
	local    *localpersist.DB
	node     *node.Node
	registry *prometheus.Registry

	states  *stateRegistry // what the admin API lists (registry.go)
	builtin *builtins      // kv, durable-kv, load, test-load
	faults  *faultSet      // nil unless TestHooks.FaultDrop or Faults
	api     *apiServer

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
//
// Options give the agent an application's own actor runtime
// ([WithRuntime]) or test hooks ([WithTestHooks]).
func Start(ctx context.Context, cfg Config, opts ...Option) (_ *Agent, err error) {
	o := options{logOut: os.Stderr}
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := o.hooks.validate(); err != nil {
		return nil, err
	}
	if err := resolveAdminToken(&cfg); err != nil {
		return nil, err
	}
	log, err := newLogger(cfg, o.logOut)
	if err != nil {
		return nil, err
	}
	log = log.With("node", cfg.NodeID)
	if err := prepareDataDir(cfg.DataDir, log); err != nil {
		return nil, err
	}
	warnLooseSecretFiles(cfg, log)
	a := &Agent{
		cfg: cfg, hooks: o.hooks, log: log, clock: dstate.SystemClock{}, started: time.Now(), rt: o.runtime,
		stopped: make(chan struct{}), bgStop: make(chan struct{}), registry: prometheus.NewRegistry(),
	}
	a.states = newStateRegistry(a.clock)
	a.api = newAPIServer(cfg, log, a)
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
	if err := a.api.listen(); err != nil {
		return err
	}
	var err error
	if a.rt == nil {
		rcfg := gosched.DefaultConfig()
		rcfg.Logger = a.log
		rt, err := gosched.New(rcfg)
		if err != nil {
			return err
		}
		a.rt, a.ownRT = rt, rt
	}

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
	if len(a.hooks.FaultDrop) > 0 || a.hooks.Faults {
		a.faults = newFaultSet(a.hooks.FaultDrop)
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
	a.builtin = &builtins{
		cfg: cfg, hooks: a.hooks, log: a.log, node: a.node, states: a.states, started: a.started,
		stop: a.bgStop, bg: &a.bg,
	}
	if a.raft != nil {
		store := a.raft.store
		a.builtin.leaderKnown = func() bool { id, _ := store.Leader(); return id != "" }
	}
	if err := a.builtin.register(ctx); err != nil {
		return err
	}
	a.registerMetrics()
	a.api.serve()
	if len(cfg.Join) > 0 {
		a.joinSeeds(ctx)
	}
	a.log.Info("agent started", "transport", a.tr.Addr(), "http", a.HTTPAddr(), "server", cfg.Server)
	return nil
}

// joinSeeds joins cfg.Join, the last step of a start: one bounded attempt,
// then, when no seed answered (seeds may come up later), retries in the
// background until one does or the agent stops.
func (a *Agent) joinSeeds(ctx context.Context) {
	jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := a.gossip.join(jctx, a.cfg.Join)
	cancel()
	if err == nil {
		return
	}
	a.log.Warn("initial join failed; retrying in the background", "seeds", a.cfg.Join, "err", err)
	rctx, cancel := context.WithCancel(context.Background())
	a.bg.Add(2)
	go func() {
		defer a.bg.Done()
		select {
		case <-a.bgStop:
		case <-rctx.Done():
		}
		cancel()
	}()
	go func() {
		defer a.bg.Done()
		defer cancel()
		_, _ = a.gossip.Membership.Join(rctx, a.cfg.Join)
	}()
}

// HTTPAddr returns the admin API's listening address.
func (a *Agent) HTTPAddr() string { return a.api.addr() }

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
	a.api.shutdown(ctx)
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
	if a.ownRT != nil {
		a.ownRT.Close()
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
// how many were reached, bounded by ctx.
func (a *Agent) Join(ctx context.Context, addrs []string) (int, error) {
	return a.gossip.join(ctx, addrs)
}

// GetKV returns key as node (default: this agent) holds it in a kv state.
func (a *Agent) GetKV(state, nodeID, key string) (KVValue, error) {
	if nodeID == "" {
		nodeID = a.cfg.NodeID
	}
	return a.builtin.get(state, nodeID, key)
}

// WriteKV applies a write to this agent's own map in a kv state.
func (a *Agent) WriteKV(ctx context.Context, state string, c KVChange) (WriteResult, error) {
	return a.builtin.write(ctx, state, c)
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
// configuration is not an error: it changes nothing, and the result says so.
func (a *Agent) Bootstrap(ctx context.Context, servers []string) (BootstrapResult, error) {
	if a.raft == nil {
		return BootstrapResult{}, fmt.Errorf("%w: bootstrap needs a server agent", errNotEnabled)
	}
	return a.raft.bootstrap(ctx, servers)
}

// Keyring lists the gossip keys installed in the cluster, asking every
// member, bounded by ctx.
func (a *Agent) Keyring(ctx context.Context) (KeyringStatus, error) { return a.gossip.keyring(ctx) }

// KeyringOp installs, uses or removes a gossip key across the cluster,
// bounded by ctx.
func (a *Agent) KeyringOp(ctx context.Context, op, key string) error {
	return a.gossip.keyringOp(ctx, op, key)
}

// leave implements adminBackend: the probes fail from now on, and the
// agent leaves the cluster (leave.go).
func (a *Agent) leave(ctx context.Context) (LeaveResult, error) {
	a.stopping.Store(true)
	return a.leaveCluster(ctx)
}

// stopLater implements adminBackend: it stops the agent in the
// background, within 30 s.
func (a *Agent) stopLater() {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	}()
}
