package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dstate-go/dstate/pkg/agent"
)

// agentFlag is an agent flag and the Config field it sets.
type agentFlag struct {
	flag ucli.Flag
	set  func(*agent.Config, *ucli.Context)
}

// agentFlags returns the agent's flags, each also read from its
// environment variable (envVar). They are built anew for every app:
// urfave/cli records in a flag what the environment set.
func agentFlags() []agentFlag {
	flags := []agentFlag{
		{&ucli.StringFlag{Name: "node-id", Usage: "unique, stable name of this node (default: the host name)"},
			func(c *agent.Config, x *ucli.Context) { c.NodeID = x.String("node-id") }},
		{&ucli.StringFlag{Name: "data-dir", Usage: "directory for the node's durable files (created if missing)"},
			func(c *agent.Config, x *ucli.Context) { c.DataDir = x.String("data-dir") }},
		{&ucli.StringFlag{Name: "cluster", Usage: "cluster name; must match on every node"},
			func(c *agent.Config, x *ucli.Context) { c.ClusterName = x.String("cluster") }},
		{&ucli.StringFlag{Name: "serf-addr", Usage: "gossip bind address host:port"},
			func(c *agent.Config, x *ucli.Context) { c.SerfAddr = x.String("serf-addr") }},
		{&ucli.StringFlag{Name: "serf-advertise", Usage: "gossip address peers use, if not --serf-addr"},
			func(c *agent.Config, x *ucli.Context) { c.SerfAdvertise = x.String("serf-advertise") }},
		{&ucli.StringFlag{Name: "transport-addr", Usage: "state transport bind address host:port"},
			func(c *agent.Config, x *ucli.Context) { c.TransportAddr = x.String("transport-addr") }},
		{&ucli.StringFlag{Name: "transport-advertise", Usage: "transport address peers use, if not --transport-addr"},
			func(c *agent.Config, x *ucli.Context) { c.TransportAdvertise = x.String("transport-advertise") }},
		{&ucli.StringFlag{Name: "raft-addr", Usage: "Raft bind address host:port (servers)"},
			func(c *agent.Config, x *ucli.Context) { c.RaftAddr = x.String("raft-addr") }},
		{&ucli.StringFlag{Name: "raft-advertise", Usage: "Raft address peers use, if not --raft-addr"},
			func(c *agent.Config, x *ucli.Context) { c.RaftAdvertise = x.String("raft-advertise") }},
		{&ucli.StringFlag{Name: "http-addr", Usage: "admin API address (loopback unless --admin-token is set)"},
			func(c *agent.Config, x *ucli.Context) { c.HTTPAddr = x.String("http-addr") }},
		{&ucli.StringSliceFlag{Name: "join", Usage: "gossip address host:port of a node to join (repeatable; a host name is resolved again at each attempt and every address tried; retried until one answers)"},
			func(c *agent.Config, x *ucli.Context) { c.Join = splitList(strings.Join(x.StringSlice("join"), ",")) }},
		{&ucli.BoolFlag{Name: "server", Usage: "be a Raft server (--server=false for a client)"},
			func(c *agent.Config, x *ucli.Context) { c.Server = x.Bool("server") }},
		{&ucli.IntFlag{Name: "bootstrap-expect", Usage: "bootstrap Raft once this many servers have joined"},
			func(c *agent.Config, x *ucli.Context) { c.BootstrapExpect = x.Int("bootstrap-expect") }},
		{&ucli.StringFlag{Name: "gossip-key-file", Usage: "keyring file that encrypts gossip"},
			func(c *agent.Config, x *ucli.Context) { c.GossipKeyFile = x.String("gossip-key-file") }},
		{&ucli.StringFlag{Name: "tls-cert-file", Usage: "certificate for mutual TLS on the state transport"},
			func(c *agent.Config, x *ucli.Context) { c.TLSCertFile = x.String("tls-cert-file") }},
		{&ucli.StringFlag{Name: "tls-key-file", Usage: "private key of --tls-cert-file"},
			func(c *agent.Config, x *ucli.Context) { c.TLSKeyFile = x.String("tls-key-file") }},
		{&ucli.StringFlag{Name: "tls-ca-file", Usage: "CA that signs every node's certificate"},
			func(c *agent.Config, x *ucli.Context) { c.TLSCAFile = x.String("tls-ca-file") }},
		{&ucli.StringFlag{Name: "admin-token", Usage: "bearer token the admin API requires"},
			func(c *agent.Config, x *ucli.Context) { c.AdminToken = x.String("admin-token") }},
		{&ucli.StringFlag{Name: "admin-token-file", Usage: "file holding the admin API's bearer token"},
			func(c *agent.Config, x *ucli.Context) { c.AdminTokenFile = x.String("admin-token-file") }},
		{&ucli.StringFlag{Name: "http-tls-cert-file", Usage: "certificate to serve the admin API over HTTPS"},
			func(c *agent.Config, x *ucli.Context) { c.HTTPTLSCertFile = x.String("http-tls-cert-file") }},
		{&ucli.StringFlag{Name: "http-tls-key-file", Usage: "private key of --http-tls-cert-file"},
			func(c *agent.Config, x *ucli.Context) { c.HTTPTLSKeyFile = x.String("http-tls-key-file") }},
		{&ucli.IntFlag{Name: "max-frame-bytes", Usage: "largest transport frame (default 16 MiB + 4 KiB)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxFrameBytes = x.Int("max-frame-bytes") }},
		{&ucli.IntFlag{Name: "max-message-bytes", Usage: "largest message, fragmented or not (default 32 MiB)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxMessageBytes = x.Int("max-message-bytes") }},
		{&ucli.IntFlag{Name: "max-snapshot-bytes", Usage: "largest full-snapshot payload accepted; a write that would make a state's own larger is refused (default 16 MiB)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxSnapshotBytes = x.Int("max-snapshot-bytes") }},
		{&ucli.IntFlag{Name: "max-delta-bytes", Usage: "largest delta payload accepted; a write whose delta is larger is refused (default 16 MiB)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxDeltaBytes = x.Int("max-delta-bytes") }},
		{&ucli.IntFlag{Name: "max-feed-notifications", Usage: "most notices in one change feed (default 65536)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxFeedNotifications = x.Int("max-feed-notifications") }},
		{&ucli.IntFlag{Name: "max-feed-states", Usage: "most distinct states one change feed names (default 4096)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxFeedStates = x.Int("max-feed-states") }},
		{&ucli.IntFlag{Name: "max-feed-peers", Usage: "most distinct source nodes one change feed names (default 1024)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxFeedPeers = x.Int("max-feed-peers") }},
		{&ucli.IntFlag{Name: "peer-queue-frames", Usage: "frames queued per peer before sends are refused (default 1024)"},
			func(c *agent.Config, x *ucli.Context) { c.PeerQueueFrames = x.Int("peer-queue-frames") }},
		{&ucli.IntFlag{Name: "max-reassembly-bytes", Usage: "memory all partially received transport messages may hold together (default the larger of 64 MiB and --max-message-bytes)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxReassemblyBytes = x.Int("max-reassembly-bytes") }},
		{&ucli.IntFlag{Name: "transport-max-conns", Usage: "most open inbound state transport connections; more are closed at once (default 1024)"},
			func(c *agent.Config, x *ucli.Context) { c.TransportMaxConns = x.Int("transport-max-conns") }},
		{&ucli.IntFlag{Name: "transport-max-conns-per-host", Usage: "most open inbound state transport connections from one IP address (default 64)"},
			func(c *agent.Config, x *ucli.Context) {
				c.TransportMaxConnsPerHost = x.Int("transport-max-conns-per-host")
			}},
		{&ucli.DurationFlag{Name: "transport-idle-timeout", Usage: "close an inbound transport connection silent this long; peers send keepalives at a third of it (default 1m30s)"},
			func(c *agent.Config, x *ucli.Context) {
				c.TransportIdleTimeout = agent.Duration(x.Duration("transport-idle-timeout"))
			}},
		{&ucli.DurationFlag{Name: "transport-read-timeout", Usage: "most time to receive each started MiB of a transport frame once it began (default 10s)"},
			func(c *agent.Config, x *ucli.Context) {
				c.TransportReadTimeout = agent.Duration(x.Duration("transport-read-timeout"))
			}},
		{&ucli.DurationFlag{Name: "transport-write-timeout", Usage: "most time a write to a peer may block, per MiB, before the peer is disconnected (default 10s)"},
			func(c *agent.Config, x *ucli.Context) {
				c.TransportWriteTimeout = agent.Duration(x.Duration("transport-write-timeout"))
			}},
		{&ucli.IntFlag{Name: "max-request-bytes", Usage: "largest admin API request body (default 1 MiB)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxRequestBytes = x.Int("max-request-bytes") }},
		{&ucli.IntFlag{Name: "max-key-bytes", Usage: "longest key of a kv state the admin API accepts (default 512)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxKeyBytes = x.Int("max-key-bytes") }},
		{&ucli.IntFlag{Name: "max-value-bytes", Usage: "largest value of a kv state the admin API accepts (default 512 KiB)"},
			func(c *agent.Config, x *ucli.Context) { c.MaxValueBytes = x.Int("max-value-bytes") }},
		{&ucli.DurationFlag{Name: "http-read-timeout", Usage: "most time to read one admin API request, headers and body (default 10s)"},
			func(c *agent.Config, x *ucli.Context) {
				c.HTTPReadTimeout = agent.Duration(x.Duration("http-read-timeout"))
			}},
		{&ucli.DurationFlag{Name: "http-write-timeout", Usage: "most time from an admin API request's headers to the end of its answer (default 1m)"},
			func(c *agent.Config, x *ucli.Context) {
				c.HTTPWriteTimeout = agent.Duration(x.Duration("http-write-timeout"))
			}},
		{&ucli.DurationFlag{Name: "http-idle-timeout", Usage: "most time a keep-alive admin API connection waits for its next request (default 1m)"},
			func(c *agent.Config, x *ucli.Context) {
				c.HTTPIdleTimeout = agent.Duration(x.Duration("http-idle-timeout"))
			}},
		{&ucli.IntFlag{Name: "http-max-conns", Usage: "most open admin API connections; more are closed at once (default 256)"},
			func(c *agent.Config, x *ucli.Context) { c.HTTPMaxConns = x.Int("http-max-conns") }},
		{&ucli.IntFlag{Name: "http-max-conns-per-host", Usage: "most open admin API connections from one client address (default 64)"},
			func(c *agent.Config, x *ucli.Context) { c.HTTPMaxConnsPerHost = x.Int("http-max-conns-per-host") }},
		{&ucli.StringFlag{Name: "http-allowed-hosts", Usage: "comma-separated Host header values the admin API accepts besides its own address, e.g. a proxy's name"},
			func(c *agent.Config, x *ucli.Context) { c.HTTPAllowedHosts = splitList(x.String("http-allowed-hosts")) }},
		{&ucli.BoolFlag{Name: "http-public-probes", Usage: "serve GET /v1/health/live, /v1/health/ready and /metrics without the admin token (Kubernetes probes, Prometheus scrapes)"},
			func(c *agent.Config, x *ucli.Context) { c.HTTPPublicProbes = x.Bool("http-public-probes") }},
		{&ucli.DurationFlag{Name: "raft-idle-timeout", Usage: "close an inbound Raft connection silent this long; at least twice the Raft heartbeat timeout (default 2m)"},
			func(c *agent.Config, x *ucli.Context) {
				c.RaftIdleTimeout = agent.Duration(x.Duration("raft-idle-timeout"))
			}},
		{&ucli.IntFlag{Name: "raft-max-conns", Usage: "most open inbound Raft connections; more are closed at once (default 512)"},
			func(c *agent.Config, x *ucli.Context) { c.RaftMaxConns = x.Int("raft-max-conns") }},
		{&ucli.IntFlag{Name: "raft-max-conns-per-host", Usage: "most open inbound Raft connections from one IP address (default 128)"},
			func(c *agent.Config, x *ucli.Context) { c.RaftMaxConnsPerHost = x.Int("raft-max-conns-per-host") }},
		{&ucli.StringFlag{Name: "raft-log-store", Usage: "Raft log and stable store: boltdb (data_dir/raft/raft.db) or wal (data_dir/raft/raft-wal/, one fsync per append); a data dir keeps the one it was made with (default boltdb)"},
			func(c *agent.Config, x *ucli.Context) { c.RaftLogStore = x.String("raft-log-store") }},
		{&ucli.DurationFlag{Name: "limit-log-interval", Usage: "least time between two warnings about one peer's bad input of one kind (default 1m)"},
			func(c *agent.Config, x *ucli.Context) {
				c.LimitLogInterval = agent.Duration(x.Duration("limit-log-interval"))
			}},
		{&ucli.DurationFlag{Name: "leave-timeout", Usage: "bound of a graceful leave: gossip, Raft leadership handover and removal from the Raft configuration (default 10s)"},
			func(c *agent.Config, x *ucli.Context) { c.LeaveTimeout = agent.Duration(x.Duration("leave-timeout")) }},
		{&ucli.StringFlag{Name: "log-level", Usage: "debug, info, warn or error"},
			func(c *agent.Config, x *ucli.Context) { c.LogLevel = x.String("log-level") }},
		{&ucli.StringFlag{Name: "raft-log-level", Usage: "least level of raft's own lines: debug, info, warn or error (default warn, or --log-level when higher)"},
			func(c *agent.Config, x *ucli.Context) { c.RaftLogLevel = x.String("raft-log-level") }},
		{&ucli.StringFlag{Name: "log-format", Usage: "text or json"},
			func(c *agent.Config, x *ucli.Context) { c.LogFormat = x.String("log-format") }},
		{&ucli.DurationFlag{Name: "load-interval", Usage: "refresh interval of the built-in load state"},
			func(c *agent.Config, x *ucli.Context) { c.LoadInterval = agent.Duration(x.Duration("load-interval")) }},
		{&ucli.DurationFlag{Name: "digest-interval", Usage: "how often every peer gets a digest of this node's state generations, to pull what it missed (default 500ms)"},
			func(c *agent.Config, x *ucli.Context) {
				c.DigestInterval = agent.Duration(x.Duration("digest-interval"))
			}},
		{&ucli.DurationFlag{Name: "full-sync-interval", Usage: "also broadcast the kv states' full snapshots at this interval (default none)"},
			func(c *agent.Config, x *ucli.Context) {
				c.FullSyncInterval = agent.Duration(x.Duration("full-sync-interval"))
			}},
		{&ucli.BoolFlag{Name: "fast", Usage: "short gossip, Raft and sync timers (loopback clusters, demos, tests)"},
			func(c *agent.Config, x *ucli.Context) { c.Fast = x.Bool("fast") }},
	}
	defaults := configDefaults()
	for _, f := range flags {
		name := f.flag.Names()[0]
		withEnv(f.flag, envVar(name))
		setDefaultText(f.flag, defaults[configKey(name)])
	}
	return flags
}

// configDefaults are agent.DefaultConfig's values by config file key, as
// help shows them ("" for none).
func configDefaults() map[string]string {
	raw, err := json.Marshal(agent.DefaultConfig())
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(err)
	}
	out := map[string]string{}
	for k, v := range m {
		switch v := v.(type) {
		case nil:
		case string:
			if v != "0s" {
				out[k] = v
			}
		case bool:
			if v {
				out[k] = "true"
			}
		case float64:
			if v != 0 {
				out[k] = fmt.Sprint(v)
			}
		}
	}
	return out
}

// setDefaultText has help show a flag's real default: the "(default X)"
// its usage ends with, moved to urfave's own "(default: X)", else def, the
// config default; a flag whose zero value means a default named in its
// usage would otherwise read "(default: 0)".
func setDefaultText(f ucli.Flag, def string) {
	var usage, text *string
	switch f := f.(type) {
	case *ucli.StringFlag:
		usage, text = &f.Usage, &f.DefaultText
	case *ucli.StringSliceFlag:
		usage, text = &f.Usage, &f.DefaultText
	case *ucli.BoolFlag:
		usage, text = &f.Usage, &f.DefaultText
	case *ucli.IntFlag:
		usage, text = &f.Usage, &f.DefaultText
	case *ucli.DurationFlag:
		usage, text = &f.Usage, &f.DefaultText
	default:
		panic(fmt.Sprintf("agent flag --%s: no default text for %T", f.Names()[0], f))
	}
	for _, open := range []string{" (default: ", " (default "} {
		if i := strings.LastIndex(*usage, open); i >= 0 && strings.HasSuffix(*usage, ")") {
			*text = (*usage)[i+len(open) : len(*usage)-1]
			*usage = (*usage)[:i]
			return
		}
	}
	*text = def
}

// flagDefault is the default an agent flag's help shows, "" for none.
func flagDefault(f ucli.Flag) string {
	switch f := f.(type) {
	case *ucli.StringFlag:
		return f.DefaultText
	case *ucli.StringSliceFlag:
		return f.DefaultText
	case *ucli.BoolFlag:
		return f.DefaultText
	case *ucli.IntFlag:
		return f.DefaultText
	case *ucli.DurationFlag:
		return f.DefaultText
	}
	return ""
}

// configKey is the config file key an agent flag sets.
func configKey(flag string) string {
	if flag == "cluster" {
		return "cluster_name"
	}
	return strings.ReplaceAll(flag, "-", "_")
}

// envVar is the environment variable an agent flag is read from:
// DSTATE_ and its upper-cased config file key.
func envVar(flag string) string { return "DSTATE_" + strings.ToUpper(configKey(flag)) }

// withEnv has f read from the environment variable env when the command
// line does not set it.
func withEnv(f ucli.Flag, env string) {
	switch f := f.(type) {
	case *ucli.StringFlag:
		f.EnvVars = []string{env}
	case *ucli.StringSliceFlag:
		f.EnvVars = []string{env}
	case *ucli.BoolFlag:
		f.EnvVars = []string{env}
	case *ucli.IntFlag:
		f.EnvVars = []string{env}
	case *ucli.DurationFlag:
		f.EnvVars = []string{env}
	default:
		panic(fmt.Sprintf("agent flag --%s: no environment variable for %T", f.Names()[0], f))
	}
}

// testFlag is a hidden agent flag and the test hook it sets; test hooks
// have no config file key and no environment variable.
type testFlag struct {
	flag ucli.Flag
	set  func(*agent.TestHooks, *ucli.Context)
}

// testFlags returns the hidden flags that set agent.TestHooks (the
// end-to-end tests use them).
func testFlags() []testFlag {
	return []testFlag{
		{&ucli.StringSliceFlag{Name: "test-fault-drop", Hidden: true, Usage: "drop frames to this peer (tests only)"},
			func(h *agent.TestHooks, x *ucli.Context) { h.FaultDrop = x.StringSlice("test-fault-drop") }},
		{&ucli.BoolFlag{Name: "test-faults", Hidden: true, Usage: "serve POST /v1/test/faults to drop frames at run time (tests only)"},
			func(h *agent.TestHooks, x *ucli.Context) { h.Faults = x.Bool("test-faults") }},
		{&ucli.IntFlag{Name: "test-load-rate", Hidden: true, Usage: "mutate the test-load state this many times per second (tests only)"},
			func(h *agent.TestHooks, x *ucli.Context) { h.LoadRate = x.Int("test-load-rate") }},
		{&ucli.DurationFlag{Name: "test-load-for", Hidden: true, Usage: "stop the test load after this long (tests only)"},
			func(h *agent.TestHooks, x *ucli.Context) { h.LoadFor = x.Duration("test-load-for") }},
		{&ucli.UintFlag{Name: "test-kv-wire-version", Hidden: true, Usage: "wire version the kv state sends (tests only)"},
			func(h *agent.TestHooks, x *ucli.Context) { h.KVWireVersion = uint32(x.Uint("test-kv-wire-version")) }},
	}
}

func agentCommand() *ucli.Command { return newAgentCommand(runAgent) }

// runFunc runs an agent; runAgent in production.
type runFunc func(ctx context.Context, cfg agent.Config, hooks agent.TestHooks, stderr io.Writer) error

// newAgentCommand is the agent command, which hands the settings to run.
func newAgentCommand(run runFunc) *ucli.Command {
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "config", Usage: "JSON config file (keys as in agent.Config's json tags)"},
		&ucli.BoolFlag{Name: "dev", Usage: "development mode: one node on loopback, data in a temporary directory removed at exit, every state ready at once (not for production)"},
	}
	cfgFlags, hookFlags := agentFlags(), testFlags()
	for _, f := range cfgFlags {
		flags = append(flags, f.flag)
	}
	for _, f := range hookFlags {
		flags = append(flags, f.flag)
	}
	return &ucli.Command{
		Name:  "agent",
		Usage: "run a dstate node",
		Description: `Runs one node until SIGINT or SIGTERM (a graceful leave; a second signal exits at once).
Settings come from defaults, then --config, then DSTATE_* environment variables
(e.g. DSTATE_NODE_ID, DSTATE_JOIN=a:7946,b:7946), then flags.

--dev starts a single node for trying dstatectl out: node ID "dev", the default loopback
addresses, fast timers, a Raft group of itself (so durable-kv is ready at once) and a
temporary data directory removed when it exits. Other flags still apply. Not for production.

Example:
   dstatectl agent --dev

Example (a 3-node cluster on one machine):
   dstatectl agent --node-id n1 --data-dir /tmp/n1 --bootstrap-expect 3
   dstatectl agent --node-id n2 --data-dir /tmp/n2 --bootstrap-expect 3 --serf-addr 127.0.0.1:7956 \
     --transport-addr 127.0.0.1:7957 --raft-addr 127.0.0.1:7958 --http-addr 127.0.0.1:7390 --join 127.0.0.1:7946`,
		Flags: flags,
		Action: func(c *ucli.Context) error {
			dev := c.Bool("dev")
			if dev && !c.IsSet("data-dir") {
				dir, err := os.MkdirTemp("", "dstate-dev-")
				if err != nil {
					return fmt.Errorf("agent --dev: %w", err)
				}
				defer os.RemoveAll(dir)
				if err := c.Set("data-dir", dir); err != nil {
					return err
				}
			}
			cfg, err := agentConfig(c, cfgFlags)
			if err != nil {
				return err
			}
			if dev {
				fmt.Fprintf(c.App.ErrWriter, "dstatectl: DEVELOPMENT MODE, NOT FOR PRODUCTION: one node %q, data in %s (removed at exit), admin API http://%s\n",
					cfg.NodeID, cfg.DataDir, cfg.HTTPAddr)
			}
			var hooks agent.TestHooks
			for _, f := range hookFlags {
				if c.IsSet(f.flag.Names()[0]) {
					f.set(&hooks, c)
				}
			}
			return run(c.Context, cfg, hooks, c.App.ErrWriter)
		},
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// agentConfig layers defaults, the config file, the environment and flags:
// a flag set on the command line wins over its environment variable
// (urfave/cli reads the variable into the flag when the command line does
// not set it), and either over the file.
func agentConfig(c *ucli.Context, flags []agentFlag) (agent.Config, error) {
	cfg := agent.DefaultConfig()
	if host, err := os.Hostname(); err == nil {
		cfg.NodeID = host
	}
	if c.Bool("dev") {
		// One node that is its own Raft group at once, on the default
		// loopback addresses, with fast timers.
		cfg.NodeID, cfg.Fast, cfg.BootstrapExpect, cfg.Join = "dev", true, 1, nil
	}
	if p := c.String("config"); p != "" {
		if err := cfg.LoadFile(p); err != nil {
			return cfg, usageError{err}
		}
	}
	for _, f := range flags {
		if c.IsSet(f.flag.Names()[0]) {
			f.set(&cfg, c)
		}
	}
	if cfg.DataDir == "" {
		return cfg, usageError{fmt.Errorf("--data-dir is required (or data_dir in --config, or DSTATE_DATA_DIR)")}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err}
	}
	return cfg, nil
}

func runAgent(ctx context.Context, cfg agent.Config, hooks agent.TestHooks, stderr io.Writer) error {
	a, err := agent.Start(ctx, cfg, agent.WithTestHooks(hooks))
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		fmt.Fprintf(stderr, "dstatectl: %s: leaving the cluster (send it again to exit at once)\n", s)
		go func() {
			<-sig
			fmt.Fprintln(stderr, "dstatectl: second signal: exiting without a graceful leave")
			os.Exit(1)
		}()
	case <-a.Done():
		return nil
	}
	// The leave (within leave_timeout) comes first, then flushing and
	// stopping the components.
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+time.Duration(cfg.LeaveTimeout))
	defer cancel()
	return a.Stop(sctx)
}
