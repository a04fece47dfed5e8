package raftpersist

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Server is one member of the raft configuration: its node ID (the raft
// server ID) and its advertised raft address (which also serves forwarded
// saves and reads).
type Server struct {
	ID      dstate.NodeID
	Address string
	// Nonvoter makes the server a non-voting member when bootstrapping.
	Nonvoter bool
}

// Config configures a [Store]. A zero duration or size means the default of
// [DefaultConfig]; NodeID, DataDir and BindAddr (or Listener) are required.
// New never modifies the caller's Config.
type Config struct {
	// NodeID is this node's ID: the raft server ID and the node under which
	// a host stores this node's states.
	NodeID dstate.NodeID
	// DataDir holds the log store's files (raft.db, or raft-wal/ with
	// LogStore "wal") and snapshots/.
	DataDir string
	// LogStore chooses raft's log and stable store: [LogStoreBoltDB]
	// ("boltdb", the default: DataDir/raft.db) or [LogStoreWAL] ("wal":
	// DataDir/raft-wal/). A data dir written with one cannot be opened with
	// the other: New returns a *LogStoreMismatchError.
	LogStore string
	// BindAddr is the TCP address to listen on ("127.0.0.1:7300"). Raft RPCs
	// and forwarded requests share this listener. Ignored when Listener is
	// set.
	BindAddr string
	// Listener, when set, is used instead of listening on BindAddr; the
	// store closes it on Close.
	Listener net.Listener
	// AdvertiseAddr is the address other servers dial; default: the
	// listener's address (which must then not be unspecified, e.g. 0.0.0.0).
	AdvertiseAddr string

	// TLS, when set, makes every connection (raft and forwarding, both
	// directions) TLS. It is the server side configuration; for mutual TLS
	// set ClientAuth to tls.RequireAndVerifyClientCert and ClientCAs.
	TLS *tls.Config
	// ClientTLS is used when dialing other servers; default: a clone of TLS
	// (its Certificates serve as the client certificate, RootCAs verify the
	// server). The server name verified is ClientTLS.ServerName when set,
	// else the host of the dialed address.
	ClientTLS *tls.Config

	// Bootstrap, when non-empty on a fresh data dir, bootstraps a cluster
	// with exactly these servers (which must include NodeID). Every initial
	// server may be given the same list; bootstrapping an existing cluster
	// is ignored.
	Bootstrap []Server
	// BootstrapExpect, when > 0 and Bootstrap is empty, bootstraps once
	// this many servers (this one included) are known through
	// [Store.ObserveServer] or KnownServers.
	BootstrapExpect int
	// KnownServers seeds the servers known for BootstrapExpect.
	KnownServers []Server

	// HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout and
	// CommitTimeout are passed to raft (defaults 1s, 1s, 500ms, 50ms).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// MaxAppendEntries bounds log entries per AppendEntries RPC (default 64).
	MaxAppendEntries int
	// SnapshotInterval, SnapshotThreshold and TrailingLogs control raft's
	// log compaction (defaults 2m, 8192, 10240). SnapshotRetain is how many
	// snapshot files to keep (default 2).
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	SnapshotRetain    int

	// DisableGroupCommit turns off group commit: each save becomes its own
	// log entry (and forwarded RPC). Group commit is on by default.
	DisableGroupCommit bool
	// MaxBatch bounds the saves in one log entry (default 256) and
	// MaxBatchBytes their encoded size (default 1 MiB).
	MaxBatch      int
	MaxBatchBytes int
	// MaxInflight bounds the batches being committed at once (default 4).
	// A batch is sent while another is in flight only when it is full
	// (MaxBatch or MaxBatchBytes); otherwise the saves arriving meanwhile
	// wait for the batch in flight and are grouped into the next one.
	MaxInflight int

	// ApplyTimeout bounds a save or linearizable read whose context has no
	// deadline (default 10s).
	ApplyTimeout time.Duration
	// DialTimeout bounds connecting to another server, TLS handshake
	// included (default 2s).
	DialTimeout time.Duration
	// MaxFrameBytes bounds one forwarding frame (default 64 MiB).
	MaxFrameBytes int
	// MaxPool is the number of idle connections kept per server, for raft
	// and for forwarding each (default 4).
	MaxPool int

	// IdleTimeout closes an accepted connection (raft or forwarding) on
	// which nothing arrives for this long (default 2m; at least twice
	// HeartbeatTimeout). A leader's connections in use never idle that
	// long: it heartbeats every HeartbeatTimeout/10 and its pipelines send
	// every CommitTimeout. A pooled raft connection left over from a burst
	// of RPCs may; the next RPC on it then fails once and raft retries it
	// on a new connection. Pooled forwarding connections idle for half of
	// IdleTimeout are not reused. Give every server of a cluster the same
	// value. The TLS handshake and the prelude of a connection must
	// complete within DialTimeout.
	IdleTimeout time.Duration
	// MaxConns bounds the accepted connections the listener holds at once,
	// in their handshake or served (default 512), and MaxConnsPerHost those
	// from one remote IP (default 128). A connection over either limit is
	// closed at once. A server holds about a dozen connections from each
	// peer (MaxPool raft and MaxPool forwarding connections, a pipeline and
	// the RPCs in flight), so MaxConnsPerHost must allow for every server
	// sharing one IP; raft's transport buffers up to 512 KiB per served
	// raft connection.
	MaxConns        int
	MaxConnsPerHost int
	// WarnInterval is the least time between two warnings about one remote
	// IP and kind of refusal (default 1m).
	WarnInterval time.Duration

	// IsKnownNode, when set, admits a raft or forwarding connection only
	// from a node that is in the raft configuration or for which it returns
	// true (e.g. a member of the gossip membership); nil admits every node.
	// The node ID is the one the dialer announces, which mutual TLS binds to
	// its certificate (without client certificates anyone can announce
	// any ID). It is called on the accepting goroutine and must not block.
	IsKnownNode func(id dstate.NodeID) bool
	// ResolveServer, when set, gives the current raft address of a server
	// of the configuration by its ID (e.g. from the gossip members' tags),
	// or false when it knows none. Raft dials that address instead of the
	// one in its configuration, so servers that all start again on new
	// addresses still reach each other and elect a leader (see leave.go).
	// It is called on raft's goroutines and must not block.
	ResolveServer func(id dstate.NodeID) (addr string, ok bool)
	// ForwardedSaveAllowed decides whether a save forwarded by node peer
	// (the ID its connection announced, bound to its certificate under
	// mutual TLS) may store env. nil means the default rule: a node saves
	// only its own envelopes (env.Node == peer), as a host does. A store's
	// own saves are never checked: on the leader they are not forwarded,
	// so [Store.SaveEnvelope] may save any node's envelope there; a
	// follower forwards them and the leader applies this rule.
	ForwardedSaveAllowed func(peer dstate.NodeID, env *dstate.StoredEnvelope) bool

	// Logger receives the store's and raft's logs; default slog.Default().
	Logger *slog.Logger
	// RaftLogLevel is the lowest level of raft's own messages passed to
	// Logger (default slog.LevelWarn: raft is chatty at Info).
	RaftLogLevel slog.Level
	// RaftLogLevelSet makes RaftLogLevel apply even when it is zero (Info).
	RaftLogLevelSet bool
}

// DefaultConfig returns a Config with every default filled in; the caller
// sets NodeID, DataDir and BindAddr.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   time.Second,
		ElectionTimeout:    time.Second,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		MaxAppendEntries:   64,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
		MaxBatch:           256,
		MaxBatchBytes:      1 << 20,
		MaxInflight:        4,
		ApplyTimeout:       10 * time.Second,
		DialTimeout:        2 * time.Second,
		MaxFrameBytes:      64 << 20,
		MaxPool:            4,
		IdleTimeout:        2 * time.Minute,
		MaxConns:           512,
		MaxConnsPerHost:    128,
		WarnInterval:       time.Minute,
		RaftLogLevel:       slog.LevelWarn,
	}
}

// withDefaults returns a copy of c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur(&c.HeartbeatTimeout, d.HeartbeatTimeout)
	setDur(&c.ElectionTimeout, d.ElectionTimeout)
	setDur(&c.LeaderLeaseTimeout, d.LeaderLeaseTimeout)
	setDur(&c.CommitTimeout, d.CommitTimeout)
	setDur(&c.SnapshotInterval, d.SnapshotInterval)
	setDur(&c.ApplyTimeout, d.ApplyTimeout)
	setDur(&c.DialTimeout, d.DialTimeout)
	setDur(&c.IdleTimeout, d.IdleTimeout)
	setDur(&c.WarnInterval, d.WarnInterval)
	setInt(&c.MaxAppendEntries, d.MaxAppendEntries)
	setInt(&c.SnapshotRetain, d.SnapshotRetain)
	setInt(&c.MaxBatch, d.MaxBatch)
	setInt(&c.MaxBatchBytes, d.MaxBatchBytes)
	setInt(&c.MaxInflight, d.MaxInflight)
	setInt(&c.MaxFrameBytes, d.MaxFrameBytes)
	setInt(&c.MaxPool, d.MaxPool)
	setInt(&c.MaxConns, d.MaxConns)
	setInt(&c.MaxConnsPerHost, d.MaxConnsPerHost)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = d.TrailingLogs
	}
	if !c.RaftLogLevelSet && c.RaftLogLevel == 0 {
		c.RaftLogLevel = d.RaftLogLevel
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LogStore == "" {
		c.LogStore = LogStoreBoltDB
	}
	return c
}

// Validate reports the first invalid field as a *ConfigError (matching
// ErrInvalidConfig). It changes nothing; zero values that have defaults are
// valid.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.NodeID == "" {
		return bad("NodeID", "must not be empty")
	}
	if len(c.NodeID) > 255 {
		return bad("NodeID", "is %d bytes, longer than 255", len(c.NodeID))
	}
	if c.DataDir == "" {
		return bad("DataDir", "must not be empty")
	}
	if c.Listener == nil && c.BindAddr == "" {
		return bad("BindAddr", "must be set when Listener is nil")
	}
	if c.LogStore != "" && c.LogStore != LogStoreBoltDB && c.LogStore != LogStoreWAL {
		return bad("LogStore", "%q is not %q or %q", c.LogStore, LogStoreBoltDB, LogStoreWAL)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertiseAddr); err != nil {
			return bad("AdvertiseAddr", "%v", err)
		}
	}
	for name, d := range map[string]time.Duration{
		"HeartbeatTimeout": c.HeartbeatTimeout, "ElectionTimeout": c.ElectionTimeout,
		"LeaderLeaseTimeout": c.LeaderLeaseTimeout, "CommitTimeout": c.CommitTimeout,
		"SnapshotInterval": c.SnapshotInterval, "ApplyTimeout": c.ApplyTimeout, "DialTimeout": c.DialTimeout,
		"IdleTimeout": c.IdleTimeout, "WarnInterval": c.WarnInterval,
	} {
		if d < 0 {
			return bad(name, "must not be negative, got %s", d)
		}
	}
	for name, n := range map[string]int{
		"MaxAppendEntries": c.MaxAppendEntries, "SnapshotRetain": c.SnapshotRetain, "MaxBatch": c.MaxBatch,
		"MaxBatchBytes": c.MaxBatchBytes, "MaxInflight": c.MaxInflight, "MaxFrameBytes": c.MaxFrameBytes,
		"MaxPool": c.MaxPool, "BootstrapExpect": c.BootstrapExpect,
		"MaxConns": c.MaxConns, "MaxConnsPerHost": c.MaxConnsPerHost,
	} {
		if n < 0 {
			return bad(name, "must not be negative, got %d", n)
		}
	}
	d := c.withDefaults()
	if d.LeaderLeaseTimeout > d.HeartbeatTimeout {
		return bad("LeaderLeaseTimeout", "%s must not exceed HeartbeatTimeout %s", d.LeaderLeaseTimeout, d.HeartbeatTimeout)
	}
	if d.ElectionTimeout < d.HeartbeatTimeout {
		return bad("ElectionTimeout", "%s must not be less than HeartbeatTimeout %s", d.ElectionTimeout, d.HeartbeatTimeout)
	}
	if d.IdleTimeout < 2*d.HeartbeatTimeout {
		return bad("IdleTimeout", "%s is less than twice HeartbeatTimeout %s", d.IdleTimeout, d.HeartbeatTimeout)
	}
	if d.MaxAppendEntries > 1024 {
		return bad("MaxAppendEntries", "%d exceeds raft's limit 1024", d.MaxAppendEntries)
	}
	if d.MaxBatchBytes+1024 > d.MaxFrameBytes {
		return bad("MaxBatchBytes", "%d does not fit MaxFrameBytes %d", d.MaxBatchBytes, d.MaxFrameBytes)
	}
	if err := validServers("Bootstrap", c.Bootstrap); err != nil {
		return err
	}
	if err := validServers("KnownServers", c.KnownServers); err != nil {
		return err
	}
	if len(c.Bootstrap) > 0 {
		self := false
		for _, s := range c.Bootstrap {
			self = self || s.ID == c.NodeID
		}
		if !self {
			return bad("Bootstrap", "does not include NodeID %q", c.NodeID)
		}
	}
	return nil
}

func validServers(field string, servers []Server) error {
	seen := map[dstate.NodeID]bool{}
	for i, s := range servers {
		f := fmt.Sprintf("%s[%d]", field, i)
		if s.ID == "" {
			return &ConfigError{Field: f + ".ID", Reason: "must not be empty"}
		}
		if seen[s.ID] {
			return &ConfigError{Field: f + ".ID", Reason: fmt.Sprintf("duplicate %q", s.ID)}
		}
		seen[s.ID] = true
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			return &ConfigError{Field: f + ".Address", Reason: err.Error()}
		}
	}
	return nil
}
