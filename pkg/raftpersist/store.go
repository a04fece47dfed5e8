package raftpersist

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/hashicorp/raft"
)

// Store is one node's member of the cluster's raft group: the raft
// instance with its log and stable store (bbolt or a WAL, Config.LogStore)
// and file snapshots, the
// replicated state machine holding every node's last saved envelopes, and
// the server answering saves and reads forwarded by followers.
//
// All methods are safe for concurrent use. A Store is a
// dstate.EnvelopeStore: dstate.PersistenceFor gives each state its
// dstate.StatePersistence on top of it.
type Store struct {
	cfg   Config
	log   *slog.Logger
	id    raft.ServerID
	addr  raft.ServerAddress
	fsm   *fsm
	raft  *raft.Raft
	logs  logStore // raft's log and stable store
	trans *raft.NetworkTransport
	mux   *mux
	rpc   *rpcClient

	refused *refusalCounters

	// beforeCommit, when set (by tests, before any save), runs at the start
	// of each batch's commit on the batch's goroutine.
	beforeCommit func()

	saves   chan *saveReq
	sem     chan struct{}
	closing chan struct{}
	wg      sync.WaitGroup

	closeCtx    context.Context // cancelled by Close
	closeCancel context.CancelFunc
	goMu        sync.Mutex
	goClosed    bool // set by Close: goTracked refuses new goroutines

	reads readCoalescer

	contacts contacts    // the leader's heartbeat failures, per follower (reach.go)
	quorum   quorumCache // the voters' reachability while no leader is known (quorum.go)

	bootMu    sync.Mutex
	known     map[raft.ServerID]raft.Server
	bootDone  bool
	closeOnce sync.Once
	closeErr  error
}

// New opens (or creates) the store in cfg.DataDir, starts listening and
// starts raft. It bootstraps the cluster when cfg.Bootstrap is set (or
// cfg.BootstrapExpect servers are known) and the data dir holds no raft
// state yet; an existing cluster is never bootstrapped again.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{
		cfg: cfg, id: raft.ServerID(cfg.NodeID), fsm: newFSM(),
		saves: make(chan *saveReq, cfg.MaxBatch), sem: make(chan struct{}, cfg.MaxInflight),
		closing: make(chan struct{}), known: map[raft.ServerID]raft.Server{},
		refused: newRefusalCounters(string(cfg.NodeID)),
	}
	s.closeCtx, s.closeCancel = context.WithCancel(context.Background())
	s.log = cfg.Logger.With("node", string(cfg.NodeID), "component", "raftpersist")
	if err := s.open(); err != nil {
		close(s.closing)
		s.closeCancel()
		_ = s.cleanup()
		return nil, err
	}
	return s, nil
}

func (s *Store) open() error {
	cfg := s.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("raftpersist: create data dir: %w", err)
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.BindAddr); err != nil {
			return fmt.Errorf("raftpersist: listen on %s: %w", cfg.BindAddr, err)
		}
	}
	adv := cfg.AdvertiseAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	advAddr, err := net.ResolveTCPAddr("tcp", adv)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("raftpersist: advertise address %q: %w", adv, err)
	}
	if advAddr.IP == nil || advAddr.IP.IsUnspecified() {
		_ = ln.Close()
		return &ConfigError{Field: "AdvertiseAddr", Reason: fmt.Sprintf("%q is not an address other servers can dial", adv)}
	}
	s.addr = raft.ServerAddress(adv)
	clientTLS := cfg.ClientTLS
	if clientTLS == nil && cfg.TLS != nil {
		clientTLS = cfg.TLS.Clone()
	}
	if clientTLS != nil && clientTLS.MinVersion == 0 {
		clientTLS.MinVersion = tls.VersionTLS12
	}
	s.mux = newMux(string(cfg.NodeID), ln, advAddr, cfg.TLS, clientTLS, cfg.DialTimeout, muxLimits{
		idle: cfg.IdleTimeout, maxConns: cfg.MaxConns, maxPerHost: cfg.MaxConnsPerHost, warnEvery: cfg.WarnInterval,
		admit: s.admit,
	}, s.refused, s.log)
	s.rpc = newRPCClient(s.mux, cfg.MaxFrameBytes, cfg.MaxPool, cfg.ApplyTimeout, cfg.IdleTimeout/2)

	hlog := newHCLogger(cfg.Logger.With("node", string(cfg.NodeID)), "raft", cfg.RaftLogLevel, cfg.WarnInterval)
	if s.logs, err = openLogStore(cfg, hlog); err != nil {
		return err
	}
	logs, err := raft.NewLogCache(512, s.logs)
	if err != nil {
		return fmt.Errorf("raftpersist: log cache: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("raftpersist: snapshot store: %w", err)
	}
	tcfg := &raft.NetworkTransportConfig{
		Stream:  &raftLayer{m: s.mux, closed: make(chan struct{})},
		MaxPool: cfg.MaxPool,
		Timeout: 10 * cfg.HeartbeatTimeout,
		Logger:  hlog.Named("transport"),
	}
	if cfg.ResolveServer != nil {
		tcfg.ServerAddressProvider = addressResolver{resolve: cfg.ResolveServer}
	}
	s.trans = raft.NewNetworkTransportWithConfig(tcfg)
	rc := raft.DefaultConfig()
	rc.LocalID = s.id
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.BatchApplyCh = true
	rc.Logger = hlog
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("%w: raft: %v", ErrInvalidConfig, err)
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, logs, s.logs, snaps, s.trans)
	if err != nil {
		return fmt.Errorf("raftpersist: start raft: %w", err)
	}
	s.watchContacts()
	s.mux.start(s.serveConn)
	if !cfg.DisableGroupCommit {
		s.goTracked(s.batcher)
	}
	for _, srv := range cfg.KnownServers {
		s.known[raft.ServerID(srv.ID)] = toRaftServer(srv)
	}
	s.known[s.id] = raft.Server{ID: s.id, Address: s.addr, Suffrage: raft.Voter}
	switch {
	case len(cfg.Bootstrap) > 0:
		servers := make([]raft.Server, len(cfg.Bootstrap))
		for i, srv := range cfg.Bootstrap {
			servers[i] = toRaftServer(srv)
		}
		return s.bootstrap(servers)
	case cfg.BootstrapExpect > 0:
		s.maybeBootstrapExpect()
	}
	return nil
}

func toRaftServer(srv Server) raft.Server {
	suf := raft.Voter
	if srv.Nonvoter {
		suf = raft.Nonvoter
	}
	return raft.Server{ID: raft.ServerID(srv.ID), Address: raft.ServerAddress(srv.Address), Suffrage: suf}
}

// bootstrap bootstraps with servers unless the cluster already exists.
func (s *Store) bootstrap(servers []raft.Server) error {
	s.bootMu.Lock()
	defer s.bootMu.Unlock()
	if s.bootDone {
		return nil
	}
	err := s.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	switch {
	case errors.Is(err, raft.ErrCantBootstrap):
		s.log.Debug("raft state exists; not bootstrapping")
	case err != nil:
		return fmt.Errorf("raftpersist: bootstrap: %w", err)
	default:
		s.log.Info("bootstrapped raft cluster", "servers", len(servers))
	}
	s.bootDone = true
	return nil
}

// Bootstrap bootstraps a cluster with exactly these servers (which should
// include this one) unless this node already holds raft state: a repeated
// bootstrap is not an error.
func (s *Store) Bootstrap(servers []Server) error {
	if err := validServers("Bootstrap", servers); err != nil {
		return err
	}
	rs := make([]raft.Server, 0, len(servers))
	for _, srv := range servers {
		rs = append(rs, toRaftServer(srv))
	}
	return s.bootstrap(rs)
}

// ObserveServer tells the store about a server discovered out of band
// (e.g. from serf tags). With Config.BootstrapExpect = N, the store
// bootstraps once N servers (itself included) are known and the data dir
// holds no raft state; the same set must be observed on every one of the N
// servers. It returns the bootstrap error, if any.
func (s *Store) ObserveServer(srv Server) error {
	if srv.ID == "" {
		return &ConfigError{Field: "Server.ID", Reason: "must not be empty"}
	}
	s.bootMu.Lock()
	s.known[raft.ServerID(srv.ID)] = toRaftServer(srv)
	s.bootMu.Unlock()
	return s.maybeBootstrapExpect()
}

func (s *Store) maybeBootstrapExpect() error {
	s.bootMu.Lock()
	if s.cfg.BootstrapExpect <= 0 || s.bootDone || len(s.known) < s.cfg.BootstrapExpect {
		s.bootMu.Unlock()
		return nil
	}
	servers := make([]raft.Server, 0, len(s.known))
	for _, srv := range s.known {
		servers = append(servers, srv)
	}
	s.bootMu.Unlock()
	return s.bootstrap(servers)
}

// ID returns this node's ID.
func (s *Store) ID() dstate.NodeID { return s.cfg.NodeID }

// Addr returns this node's advertised raft (and forwarding) address.
func (s *Store) Addr() string { return string(s.addr) }

// Raft returns the underlying raft instance, for operations this package
// does not wrap. Do not Apply commands of your own through it: the state
// machine rejects entries it cannot decode.
func (s *Store) Raft() *raft.Raft { return s.raft }

// Close shuts raft down, closes the listener, every connection and the log
// store, and waits for the store's goroutines. Pending saves fail with
// ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.closeCancel()
		s.goMu.Lock()
		s.goClosed = true
		s.goMu.Unlock()
		s.closeErr = s.cleanup()
	})
	return s.closeErr
}

func (s *Store) cleanup() error {
	var errs []error
	if s.raft != nil {
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raftpersist: raft shutdown: %w", err))
		}
	}
	if s.trans != nil {
		_ = s.trans.Close()
	}
	if s.rpc != nil {
		s.rpc.close()
	}
	if s.mux != nil {
		_ = s.mux.close()
	} else if s.cfg.Listener != nil {
		_ = s.cfg.Listener.Close()
	}
	s.wg.Wait()
	if s.logs != nil {
		if err := s.logs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("raftpersist: close log store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// isClosed reports whether Close has begun.
func (s *Store) isClosed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// opContext bounds ctx by Config.ApplyTimeout when it has no deadline and
// ends it when the store closes.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, s.cfg.ApplyTimeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	stop := context.AfterFunc(s.closeCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// goTracked runs f on a goroutine Close waits for; it returns false (and
// does not run f) once Close has begun.
func (s *Store) goTracked(f func()) bool {
	s.goMu.Lock()
	defer s.goMu.Unlock()
	if s.goClosed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}
