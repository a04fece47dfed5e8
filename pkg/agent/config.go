package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is everything an operator sets for an agent. Fields carry JSON
// names for the config file ([Config.LoadFile]); `dstatectl agent` also
// reads each from a flag and from an environment variable named DSTATE_
// and the upper-cased JSON name (e.g. DSTATE_NODE_ID). Switches for tests
// are not here but in [TestHooks].
type Config struct {
	// NodeID names the node in the cluster; it must be unique and stable
	// across restarts (the data dir belongs to it).
	NodeID string `json:"node_id"`
	// ClusterName must match on every node; the transport refuses others.
	ClusterName string `json:"cluster_name"`
	// DataDir holds the node's durable files (raft log and snapshots, the
	// local state store, the serf snapshot). It is created if missing, and
	// made private at start (mode 0700; the files in it 0600).
	DataDir string `json:"data_dir"`

	// SerfAddr is the gossip bind address (host:port).
	SerfAddr string `json:"serf_addr"`
	// SerfAdvertise is the gossip address peers use, if not SerfAddr.
	SerfAdvertise string `json:"serf_advertise"`
	// TransportAddr is the state transport's bind address.
	TransportAddr string `json:"transport_addr"`
	// TransportAdvertise is the transport address peers use, if not
	// TransportAddr.
	TransportAdvertise string `json:"transport_advertise"`
	// RaftAddr is the Raft bind address (servers only).
	RaftAddr string `json:"raft_addr"`
	// RaftAdvertise is the Raft address peers use, if not RaftAddr.
	RaftAdvertise string `json:"raft_advertise"`
	// HTTPAddr is the admin API's address; it must be a loopback address
	// unless AdminToken is set.
	HTTPAddr string `json:"http_addr"`

	// Join lists the gossip addresses ("host:port") of nodes to join at
	// start. A host may be a name (a Kubernetes headless service, say):
	// each join round resolves it again and tries every address it
	// resolves to. When no seed answers, the agent keeps retrying in the
	// background until one does or it stops.
	Join []string `json:"join"`
	// Server makes the node a Raft server (a voter once added).
	Server bool `json:"server"`
	// BootstrapExpect, when > 0, bootstraps Raft once that many servers
	// have joined the gossip cluster.
	BootstrapExpect int `json:"bootstrap_expect"`

	// GossipKeyFile is a keyring file; when set, gossip is encrypted.
	GossipKeyFile string `json:"gossip_key_file"`
	// TLSCertFile, TLSKeyFile and TLSCAFile enable mutual TLS on the state
	// transport: all three or none.
	TLSCertFile string `json:"tls_cert_file"`
	TLSKeyFile  string `json:"tls_key_file"`
	TLSCAFile   string `json:"tls_ca_file"`
	// AdminToken, when set, is required as a bearer token by the admin API.
	AdminToken string `json:"admin_token"`
	// AdminTokenFile names a file holding the admin token (surrounding
	// whitespace trimmed), read at start when AdminToken is empty.
	AdminTokenFile string `json:"admin_token_file"`
	// HTTPTLSCertFile and HTTPTLSKeyFile, set together, serve the admin
	// API over HTTPS with this certificate.
	HTTPTLSCertFile string `json:"http_tls_cert_file"`
	HTTPTLSKeyFile  string `json:"http_tls_key_file"`

	// Limits on what peers and operators may send. Zero means the default
	// named. Input over a limit is refused, counted in
	// dstate_limit_exceeded_total{limit} and logged once per peer per
	// LimitLogInterval.
	//
	// MaxFrameBytes bounds one transport frame (default 16 MiB + 4 KiB).
	MaxFrameBytes int `json:"max_frame_bytes"`
	// MaxMessageBytes bounds one message, fragmented or not (default
	// 32 MiB; at least MaxFrameBytes).
	MaxMessageBytes int `json:"max_message_bytes"`
	// MaxSnapshotBytes bounds a full snapshot's payload (default 16 MiB):
	// a peer's larger snapshot is dropped, and a write that would make a
	// state's own snapshot larger is refused (HTTP 413) and undone.
	MaxSnapshotBytes int `json:"max_snapshot_bytes"`
	// MaxDeltaBytes bounds a delta's payload (default 16 MiB), both ways as
	// MaxSnapshotBytes does.
	MaxDeltaBytes int `json:"max_delta_bytes"`
	// MaxFeedNotifications bounds the notices of one change feed (default
	// 65536).
	MaxFeedNotifications int `json:"max_feed_notifications"`
	// MaxFeedStates bounds the distinct states one change feed names
	// (default 4096).
	MaxFeedStates int `json:"max_feed_states"`
	// MaxFeedPeers bounds the distinct source nodes one change feed names
	// (default 1024).
	MaxFeedPeers int `json:"max_feed_peers"`
	// PeerQueueFrames bounds the frames queued for one peer (default
	// 1024); past it sends are refused and the peer catches up later.
	PeerQueueFrames int `json:"peer_queue_frames"`
	// MaxReassemblyBytes bounds the memory that partially received
	// transport messages hold across all inbound connections (default the
	// larger of 64 MiB and max_message_bytes, so 64 MiB at the defaults;
	// at least max_message_bytes). The connection whose message would pass
	// it is closed.
	MaxReassemblyBytes int `json:"max_reassembly_bytes"`
	// TransportMaxConns bounds the state transport's open inbound
	// connections (default 1024); past it new ones are closed at once.
	TransportMaxConns int `json:"transport_max_conns"`
	// TransportMaxConnsPerHost bounds the state transport's open inbound
	// connections from one IP address (default 64).
	TransportMaxConnsPerHost int `json:"transport_max_conns_per_host"`
	// TransportIdleTimeout closes an inbound transport connection that
	// sends nothing for this long (default 1m30s); peers send a keepalive
	// after a third of it without frames, so use one value cluster-wide.
	TransportIdleTimeout Duration `json:"transport_idle_timeout"`
	// TransportReadTimeout bounds receiving a transport frame once its
	// header has arrived, per started MiB (default 10s).
	TransportReadTimeout Duration `json:"transport_read_timeout"`
	// TransportWriteTimeout bounds a write to a peer, per MiB; a peer that
	// stops reading is disconnected (default 10s).
	TransportWriteTimeout Duration `json:"transport_write_timeout"`
	// MaxRequestBytes bounds an admin API request body (default 1 MiB).
	MaxRequestBytes int `json:"max_request_bytes"`
	// MaxKeyBytes bounds a key the admin API reads or writes in a kv
	// state (default 512, DefaultMaxKeyBytes). Keys are UTF-8 text
	// without control characters whatever this limit.
	MaxKeyBytes int `json:"max_key_bytes"`
	// MaxValueBytes bounds a value the admin API writes to a kv state
	// (default 512 KiB, DefaultMaxValueBytes; max_request_bytes bounds it
	// too).
	MaxValueBytes int `json:"max_value_bytes"`
	// HTTPReadTimeout bounds reading one admin API request, headers and
	// body (default 10s); a slower client is cut off.
	HTTPReadTimeout Duration `json:"http_read_timeout"`
	// HTTPWriteTimeout bounds one admin API request from the end of its
	// headers to the end of its answer (default 1m).
	HTTPWriteTimeout Duration `json:"http_write_timeout"`
	// HTTPIdleTimeout bounds a keep-alive admin API connection's wait for
	// its next request (default 1m).
	HTTPIdleTimeout Duration `json:"http_idle_timeout"`
	// HTTPMaxConns bounds the admin API's open connections (default
	// 256); past it new connections are closed at once.
	HTTPMaxConns int `json:"http_max_conns"`
	// HTTPMaxConnsPerHost bounds the admin API's open connections from
	// one client IP address (default 64).
	HTTPMaxConnsPerHost int `json:"http_max_conns_per_host"`
	// HTTPAllowedHosts lists Host header values (host or host:port) the
	// admin API accepts besides the address it is bound to, e.g. the
	// name of a proxy in front of it. Without an admin token the Host
	// header is always checked (against DNS rebinding); with a token
	// only when this list is set.
	HTTPAllowedHosts []string `json:"http_allowed_hosts"`
	// HTTPPublicProbes serves GET /v1/health/live, /v1/health/ready and
	// /metrics without the admin token (off by default; every other
	// endpoint still needs it): for Kubernetes probes and Prometheus
	// scrapes that cannot send a token. See SECURITY.md.
	HTTPPublicProbes bool `json:"http_public_probes"`
	// RaftIdleTimeout closes an inbound Raft connection (Raft RPCs or
	// forwarded saves and reads) that sends nothing for this long (default
	// 2m; at least twice the Raft heartbeat timeout, 1s or 200ms with
	// fast). A leader's heartbeats and pipelines keep the connections in
	// use busy; use one value cluster-wide.
	RaftIdleTimeout Duration `json:"raft_idle_timeout"`
	// RaftMaxConns bounds the Raft listener's open inbound connections
	// (default 512); past it new ones are closed at once.
	RaftMaxConns int `json:"raft_max_conns"`
	// RaftMaxConnsPerHost bounds the Raft listener's open inbound
	// connections from one IP address (default 128; a server holds about
	// a dozen from each peer).
	RaftMaxConnsPerHost int `json:"raft_max_conns_per_host"`
	// RaftLogStore is the Raft log and stable store: "boltdb" (the
	// default: data_dir/raft/raft.db) or "wal" (data_dir/raft/raft-wal/, a
	// write-ahead log with one fsync per append where boltdb does two). A
	// data dir keeps the store it was made with: starting it with the other
	// fails with an error naming both.
	RaftLogStore string `json:"raft_log_store"`
	// LimitLogInterval is the least time between two warnings about one
	// peer's input of one kind (default 1m).
	LimitLogInterval Duration `json:"limit_log_interval"`
	// LeaveTimeout bounds a graceful leave (Stop, SIGTERM, dstatectl
	// leave): gossip, handing Raft leadership over and waiting until the
	// server is out of the Raft configuration (default 10s, see
	// DefaultLeaveTimeout and leave.go).
	LeaveTimeout Duration `json:"leave_timeout"`

	// LogLevel is debug, info, warn or error: the least level logged,
	// serf's and memberlist's lines included.
	LogLevel string `json:"log_level"`
	// RaftLogLevel is the least level of raft's own lines (debug, info,
	// warn or error), apart from log_level; empty means warn, or log_level
	// when that is higher (raft is chatty at info).
	RaftLogLevel string `json:"raft_log_level"`
	// LogFormat is text or json.
	LogFormat string `json:"log_format"`

	// LoadInterval is how often the built-in load state is refreshed.
	LoadInterval Duration `json:"load_interval"`
	// DigestInterval is how often the node sends every peer one digest of
	// its states' generations, from which a peer that missed an update
	// pulls just that state (default 500ms; a digest also goes at once
	// after a reconnect, a failed peer's return or a refused frame). After
	// a partition heals with no further writes, views converge within about
	// this interval.
	DigestInterval Duration `json:"digest_interval"`
	// FullSyncInterval, when positive, also broadcasts the kv and
	// durable-kv states' full snapshots to every peer at this interval
	// (blind periodic full sync, as before digests). Zero, the default,
	// sends none: digests repair what was lost.
	FullSyncInterval Duration `json:"full_sync_interval"`
	// Fast selects short gossip, Raft and sync timers for loopback tests
	// and demos (failure detection in well under a second).
	Fast bool `json:"fast"`
}

// DefaultMaxRequestBytes bounds an admin API request body by default.
const DefaultMaxRequestBytes = 1 << 20

// Duration is a time.Duration that reads and writes as "1s" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1s" or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration %s is neither a string like \"1s\" nor nanoseconds", b)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// DefaultConfig returns a single-node server configuration on loopback
// with the default ports: gossip 7946, transport 7947, Raft 7948, admin
// API 7380. NodeID and DataDir are left for the caller.
func DefaultConfig() Config {
	return Config{
		ClusterName:   "dstate",
		SerfAddr:      "127.0.0.1:7946",
		TransportAddr: "127.0.0.1:7947",
		RaftAddr:      "127.0.0.1:7948",
		HTTPAddr:      "127.0.0.1:7380",
		Server:        true,
		LogLevel:      "info",
		LogFormat:     "text",
		LoadInterval:  Duration(time.Second),
	}
}

// ConfigError names the field of a Config that is wrong.
type ConfigError struct {
	Field  string // the JSON name
	Reason string
}

// Error implements error.
func (e *ConfigError) Error() string { return fmt.Sprintf("agent config: %s: %s", e.Field, e.Reason) }

// Validate returns a *ConfigError for the first field that is wrong, or
// nil. It changes nothing.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case c.NodeID == "":
		return bad("node_id", "is empty")
	case len(c.NodeID) > 128 || strings.ContainsAny(c.NodeID, " \t\r\n/\\"):
		return bad("node_id", "%q must be at most 128 characters without spaces or slashes", c.NodeID)
	case c.ClusterName == "":
		return bad("cluster_name", "is empty")
	case c.DataDir == "":
		return bad("data_dir", "is empty")
	case c.BootstrapExpect < 0:
		return bad("bootstrap_expect", "%d is negative", c.BootstrapExpect)
	case c.BootstrapExpect > 0 && !c.Server:
		return bad("bootstrap_expect", "is set on a node that is not a server")
	case c.LoadInterval < 0:
		return bad("load_interval", "%s is negative", time.Duration(c.LoadInterval))
	case c.DigestInterval < 0:
		return bad("digest_interval", "%s is negative", time.Duration(c.DigestInterval))
	case c.FullSyncInterval < 0:
		return bad("full_sync_interval", "%s is negative", time.Duration(c.FullSyncInterval))
	case c.LeaveTimeout < 0:
		return bad("leave_timeout", "%s is negative", time.Duration(c.LeaveTimeout))
	}
	for _, a := range []struct{ field, v string }{
		{"serf_addr", c.SerfAddr}, {"transport_addr", c.TransportAddr}, {"http_addr", c.HTTPAddr}, {"raft_addr", c.RaftAddr},
		{"serf_advertise", c.SerfAdvertise}, {"transport_advertise", c.TransportAdvertise}, {"raft_advertise", c.RaftAdvertise},
	} {
		if a.v == "" {
			if a.field == "serf_addr" || a.field == "transport_addr" || a.field == "http_addr" || (a.field == "raft_addr" && c.Server) {
				return bad(a.field, "is empty")
			}
			continue
		}
		if _, port, err := net.SplitHostPort(a.v); err != nil {
			return bad(a.field, "%q is not host:port: %v", a.v, err)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return bad(a.field, "%q has an invalid port", a.v)
		}
	}
	for i, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return bad(fmt.Sprintf("join[%d]", i), "%q is not host:port: %v", j, err)
		}
	}
	if c.AdminToken == "" && c.AdminTokenFile == "" && !isLoopback(c.HTTPAddr) {
		return bad("http_addr", "%q is not a loopback address and admin_token is empty: set a token to expose the admin API", c.HTTPAddr)
	}
	if (c.HTTPTLSCertFile == "") != (c.HTTPTLSKeyFile == "") {
		return bad("http_tls_cert_file", "http_tls_cert_file and http_tls_key_file must be set together")
	}
	for _, l := range []struct {
		field string
		v     int
	}{
		{"max_frame_bytes", c.MaxFrameBytes}, {"max_message_bytes", c.MaxMessageBytes},
		{"max_snapshot_bytes", c.MaxSnapshotBytes}, {"max_delta_bytes", c.MaxDeltaBytes},
		{"max_feed_notifications", c.MaxFeedNotifications}, {"max_feed_states", c.MaxFeedStates},
		{"max_feed_peers", c.MaxFeedPeers}, {"peer_queue_frames", c.PeerQueueFrames},
		{"max_request_bytes", c.MaxRequestBytes}, {"max_key_bytes", c.MaxKeyBytes}, {"max_value_bytes", c.MaxValueBytes},
		{"http_max_conns", c.HTTPMaxConns}, {"http_max_conns_per_host", c.HTTPMaxConnsPerHost},
	} {
		if l.v < 0 {
			return bad(l.field, "%d is negative", l.v)
		}
	}
	switch {
	case c.MaxFrameBytes > 0 && c.MaxFrameBytes < 1024:
		return bad("max_frame_bytes", "%d is below the 1024 bytes a frame needs", c.MaxFrameBytes)
	case c.MaxMessageBytes > 0 && c.MaxMessageBytes < max(c.MaxFrameBytes, 1024):
		return bad("max_message_bytes", "%d is smaller than max_frame_bytes", c.MaxMessageBytes)
	case c.LimitLogInterval < 0:
		return bad("limit_log_interval", "%s is negative", time.Duration(c.LimitLogInterval))
	case c.HTTPReadTimeout < 0:
		return bad("http_read_timeout", "%s is negative", time.Duration(c.HTTPReadTimeout))
	case c.HTTPWriteTimeout < 0:
		return bad("http_write_timeout", "%s is negative", time.Duration(c.HTTPWriteTimeout))
	case c.HTTPIdleTimeout < 0:
		return bad("http_idle_timeout", "%s is negative", time.Duration(c.HTTPIdleTimeout))
	}
	for i, h := range c.HTTPAllowedHosts {
		if h = strings.TrimSpace(h); h == "" || strings.ContainsAny(h, "/ \t@?#") {
			return bad(fmt.Sprintf("http_allowed_hosts[%d]", i), "%q is not a host or host:port", c.HTTPAllowedHosts[i])
		}
	}
	if err := validateRaftLimits(c); err != nil {
		return err
	}
	if err := validateTransportLimits(c); err != nil {
		return err
	}
	n := 0
	for _, f := range []string{c.TLSCertFile, c.TLSKeyFile, c.TLSCAFile} {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		return bad("tls_cert_file", "tls_cert_file, tls_key_file and tls_ca_file must be set together")
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return bad("log_level", "%v", err)
	}
	if c.RaftLogLevel != "" {
		if _, err := parseLevel(c.RaftLogLevel); err != nil {
			return bad("raft_log_level", "%v", err)
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return bad("log_format", "%q is not text or json", c.LogFormat)
	}
	return nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// LoadFile reads a JSON config file over c: fields the file names replace
// c's, others are kept. Unknown fields are an error naming them.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("agent config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("agent config: %s: %w", path, err)
	}
	// One JSON document, then nothing but white space.
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("more than one JSON value")
		}
		return fmt.Errorf("agent config: %s: after the JSON object: %w", path, err)
	}
	return nil
}
