package serfevents

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Defaults applied to zero Config fields.
const (
	// DefaultBindAddr is the gossip address (UDP and TCP) serf binds.
	DefaultBindAddr = "0.0.0.0:7946"
	// DefaultJoinRetryInterval is the wait between two join rounds.
	DefaultJoinRetryInterval = time.Second
	// DefaultReconnectTimeout is how long a failed node is remembered (and
	// retried) before it is reaped.
	DefaultReconnectTimeout = 24 * time.Hour
	// DefaultTombstoneTimeout is how long a node that left is remembered
	// before it is reaped.
	DefaultTombstoneTimeout = 24 * time.Hour
	// DefaultReapInterval is how often failed and left nodes are checked
	// against their timeouts.
	DefaultReapInterval = 15 * time.Second
	// DefaultReconnectInterval is how often serf tries to reconnect to
	// failed nodes.
	DefaultReconnectInterval = 30 * time.Second
	// DefaultQueueSize is the number of events queued per subscriber before
	// events are dropped.
	DefaultQueueSize = 1024
)

// maxLabelLen is memberlist's limit on the cluster label.
const maxLabelLen = 255

// Config configures a Membership. Zero fields mean the defaults above (and
// LANTiming for Timing); New copies the Config and never changes the
// caller's value (nor its Tags, Seeds or Keys).
type Config struct {
	// NodeID is the serf node name. Required; it must be unique in the
	// cluster. A node that restarts under the same NodeID is the same node
	// to its peers.
	NodeID dstate.NodeID
	// ClusterName, when set, is the memberlist label: gossip from a node
	// with another ClusterName is rejected. At most 255 bytes.
	ClusterName string
	// BindAddr is the gossip address, "ip:port", for both UDP and TCP; an
	// empty ip means all interfaces. Port 0 picks a free port (read it back
	// with LocalNode().Addr).
	BindAddr string
	// AdvertiseAddr, when set, is the "ip:port" peers reach this node at
	// (for NAT or a wildcard BindAddr). The host must be an IP address.
	AdvertiseAddr string
	// Tags are advertised to every peer (see the Tag* keys). They must fit
	// in MaxTagsSize bytes once encoded, together with TagBoot, which the
	// Membership sets and callers must not.
	Tags map[string]string
	// Seeds are gossip addresses ("host:port") to join. New joins them in
	// the background, retrying every JoinRetryInterval until one answers
	// (or JoinMaxAttempts rounds failed, or the Membership is shut down).
	// Join joins explicitly.
	Seeds []string
	// Resolver resolves the host names of seeds at every join round; every
	// address a name resolves to is tried. Nil means net.DefaultResolver.
	Resolver Resolver
	// JoinRetryInterval is the wait between two join rounds.
	JoinRetryInterval time.Duration
	// JoinMaxAttempts bounds the background join rounds; zero retries until
	// a seed answers or the Membership is shut down.
	JoinMaxAttempts int
	// SnapshotPath, when set, is a file where serf records the members it
	// knows; a node restarted with the same file rejoins them on its own,
	// without seeds. Its directory must exist. The file is kept at mode
	// 0600, and so is "<SnapshotPath>.compact", which serf compacts it
	// through (see files.go).
	SnapshotPath string
	// RejoinAfterLeave makes a node restarted after a graceful Leave rejoin
	// the peers in its snapshot too (by default only a node that stopped
	// without leaving does).
	RejoinAfterLeave bool
	// ReconnectTimeout is how long a failed node is remembered before it is
	// reaped (NodeReaped).
	ReconnectTimeout time.Duration
	// TombstoneTimeout is how long a node that left is remembered before it
	// is reaped (NodeReaped).
	TombstoneTimeout time.Duration
	// ReapInterval is how often departed nodes are checked against
	// ReconnectTimeout and TombstoneTimeout.
	ReapInterval time.Duration
	// ReconnectInterval is how often serf tries to reach failed nodes.
	ReconnectInterval time.Duration
	// DeadNodeReclaimTime, when positive, lets a node that failed longer
	// ago than this come back under the same NodeID at another address.
	// Zero allows it only for a node that left gracefully (a failed node
	// must come back at the same address until it is reaped).
	DeadNodeReclaimTime time.Duration
	// Timing is the failure detector's and gossip's timing; zero fields
	// mean LANTiming's.
	Timing Timing
	// Keys enables gossip encryption: base64 AES keys of 16, 24 or 32
	// bytes, the first one primary (used to encrypt; all are tried to
	// decrypt). At most one of Keys and KeyFile may be set.
	Keys []string
	// KeyFile enables gossip encryption with the keys read from this file
	// (see LoadKeyFile). Keyring changes (InstallKey, UseKey, RemoveKey)
	// are written back to it as a JSON list, the primary key first; once
	// rewritten, the file is made mode 0600 if it was readable by others.
	KeyFile string
	// QueueSize bounds each subscriber's event queue; when it is full,
	// further events for that subscriber are dropped and counted until it
	// catches up (see Membership.Subscribe).
	QueueSize int
	// Logger receives the Membership's logs and serf's and memberlist's,
	// with a "component" attribute; nil discards them.
	Logger *slog.Logger
}

// Timing is the gossip and failure-detection timing, the knobs of
// memberlist's configuration. Zero fields take LANTiming's value.
type Timing struct {
	// ProbeInterval is how often a random member is probed.
	ProbeInterval time.Duration
	// ProbeTimeout is how long to wait for a probe's ack; less than
	// ProbeInterval.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspect node has to refute before it
	// is declared failed: SuspicionMult × max(1, log10(n)) × ProbeInterval
	// at least.
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds the suspicion time at this multiple of
	// its minimum (reached when no other member confirms the suspicion).
	SuspicionMaxTimeoutMult int
	// GossipInterval is how often gossip messages are sent.
	GossipInterval time.Duration
	// GossipNodes is how many members each gossip round goes to.
	GossipNodes int
	// PushPullInterval is how often full state is exchanged with a random
	// member.
	PushPullInterval time.Duration
	// TCPTimeout bounds TCP exchanges (joins, push-pull, fallback probes).
	TCPTimeout time.Duration
	// GossipToTheDeadTime is how long dead members still get gossip.
	GossipToTheDeadTime time.Duration
	// RetransmitMult scales how many times a broadcast is retransmitted.
	RetransmitMult int
	// BroadcastTimeout bounds waiting for a broadcast (leave, tags) to go
	// out.
	BroadcastTimeout time.Duration
	// LeavePropagateDelay is how long Leave keeps the node answering after
	// its leave went out, so peers see a leave rather than a failure.
	LeavePropagateDelay time.Duration
	// QueryTimeoutMult scales serf's query timeout (keyring operations):
	// GossipInterval × QueryTimeoutMult × ceil(log10(n+1)).
	QueryTimeoutMult int
}

// LANTiming is memberlist's LAN preset (plus serf's defaults): a failed
// node is detected in a few seconds.
func LANTiming() Timing {
	return Timing{
		ProbeInterval:           time.Second,
		ProbeTimeout:            500 * time.Millisecond,
		SuspicionMult:           4,
		SuspicionMaxTimeoutMult: 6,
		GossipInterval:          200 * time.Millisecond,
		GossipNodes:             3,
		PushPullInterval:        30 * time.Second,
		TCPTimeout:              10 * time.Second,
		GossipToTheDeadTime:     30 * time.Second,
		RetransmitMult:          4,
		BroadcastTimeout:        5 * time.Second,
		LeavePropagateDelay:     time.Second,
		QueryTimeoutMult:        16,
	}
}

// LocalTiming is a fast preset for a cluster on one host (tests): a failed
// node is detected in about a second.
func LocalTiming() Timing {
	return Timing{
		ProbeInterval:           200 * time.Millisecond,
		ProbeTimeout:            100 * time.Millisecond,
		SuspicionMult:           2,
		SuspicionMaxTimeoutMult: 3,
		GossipInterval:          20 * time.Millisecond,
		GossipNodes:             3,
		PushPullInterval:        2 * time.Second,
		TCPTimeout:              time.Second,
		GossipToTheDeadTime:     2 * time.Second,
		RetransmitMult:          3,
		BroadcastTimeout:        2 * time.Second,
		LeavePropagateDelay:     200 * time.Millisecond,
		QueryTimeoutMult:        40,
	}
}

// withDefaults fills zero fields from LANTiming.
func (t Timing) withDefaults() Timing {
	d := LANTiming()
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur(&t.ProbeInterval, d.ProbeInterval)
	setDur(&t.ProbeTimeout, min(d.ProbeTimeout, t.ProbeInterval/2))
	setInt(&t.SuspicionMult, d.SuspicionMult)
	setInt(&t.SuspicionMaxTimeoutMult, d.SuspicionMaxTimeoutMult)
	setDur(&t.GossipInterval, d.GossipInterval)
	setInt(&t.GossipNodes, d.GossipNodes)
	setDur(&t.PushPullInterval, d.PushPullInterval)
	setDur(&t.TCPTimeout, d.TCPTimeout)
	setDur(&t.GossipToTheDeadTime, d.GossipToTheDeadTime)
	setInt(&t.RetransmitMult, d.RetransmitMult)
	setDur(&t.BroadcastTimeout, d.BroadcastTimeout)
	setDur(&t.LeavePropagateDelay, d.LeavePropagateDelay)
	setInt(&t.QueryTimeoutMult, d.QueryTimeoutMult)
	return t
}

// FailureDetectionTime estimates how long after a node stops answering its
// peers report it NodeFailed, in a healthy cluster of n members: the
// longest wait for the node's turn to be probed, the probe timeout and the
// longest suspicion. Zero fields count as LANTiming's.
func (t Timing) FailureDetectionTime(n int) time.Duration {
	t = t.withDefaults()
	n = max(n, 1)
	scale := math.Max(1, math.Log10(float64(n)))
	suspicion := time.Duration(float64(t.SuspicionMult) * scale * float64(t.ProbeInterval))
	return time.Duration(n)*t.ProbeInterval + t.ProbeTimeout + time.Duration(t.SuspicionMaxTimeoutMult)*suspicion
}

// DefaultConfig returns a Config with every default spelled out, for a LAN.
// NodeID must still be set.
func DefaultConfig() Config {
	return Config{
		BindAddr:          DefaultBindAddr,
		JoinRetryInterval: DefaultJoinRetryInterval,
		ReconnectTimeout:  DefaultReconnectTimeout,
		TombstoneTimeout:  DefaultTombstoneTimeout,
		ReapInterval:      DefaultReapInterval,
		ReconnectInterval: DefaultReconnectInterval,
		Timing:            LANTiming(),
		QueueSize:         DefaultQueueSize,
	}
}

// LocalConfig returns a Config for a cluster on one host, as tests run it:
// loopback on a free port, LocalTiming, fast join retries and reaping, and
// failed nodes that may come back at another address after a second.
// NodeID must still be set.
func LocalConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1:0"
	c.JoinRetryInterval = 50 * time.Millisecond
	c.ReconnectTimeout = 30 * time.Second
	c.TombstoneTimeout = 30 * time.Second
	c.ReapInterval = 250 * time.Millisecond
	c.ReconnectInterval = 500 * time.Millisecond
	c.DeadNodeReclaimTime = time.Second
	c.Timing = LocalTiming()
	return c
}

// withDefaults returns a copy of c with zero fields defaulted; the maps and
// slices are copied too.
func (c Config) withDefaults() Config {
	if c.BindAddr == "" {
		c.BindAddr = DefaultBindAddr
	}
	if c.JoinRetryInterval == 0 {
		c.JoinRetryInterval = DefaultJoinRetryInterval
	}
	if c.ReconnectTimeout == 0 {
		c.ReconnectTimeout = DefaultReconnectTimeout
	}
	if c.TombstoneTimeout == 0 {
		c.TombstoneTimeout = DefaultTombstoneTimeout
	}
	if c.ReapInterval == 0 {
		c.ReapInterval = DefaultReapInterval
	}
	if c.ReconnectInterval == 0 {
		c.ReconnectInterval = DefaultReconnectInterval
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	c.Timing = c.Timing.withDefaults()
	tags := make(map[string]string, len(c.Tags))
	for k, v := range c.Tags {
		tags[k] = v
	}
	c.Tags = tags
	c.Seeds = append([]string(nil), c.Seeds...)
	c.Keys = append([]string(nil), c.Keys...)
	return c
}

// Validate reports the first invalid field as a *ConfigError naming it; it
// changes nothing. Zero values are valid where a default applies. It does
// not read KeyFile (New does).
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.NodeID == "" {
		return bad("NodeID", "is empty")
	}
	if len(c.ClusterName) > maxLabelLen {
		return bad("ClusterName", "is %d bytes, the limit is %d", len(c.ClusterName), maxLabelLen)
	}
	if c.BindAddr != "" {
		host, _, err := splitHostPort(c.BindAddr, true)
		if err != nil {
			return bad("BindAddr", "%q: %v", c.BindAddr, err)
		}
		if host != "" && net.ParseIP(host) == nil {
			return bad("BindAddr", "%q: host must be an IP address", c.BindAddr)
		}
	}
	if c.AdvertiseAddr != "" {
		host, _, err := splitHostPort(c.AdvertiseAddr, false)
		if err != nil {
			return bad("AdvertiseAddr", "%q: %v", c.AdvertiseAddr, err)
		}
		if net.ParseIP(host) == nil {
			return bad("AdvertiseAddr", "%q: host must be an IP address", c.AdvertiseAddr)
		}
	}
	if _, ok := c.Tags[TagBoot]; ok {
		return bad("Tags", "sets the reserved tag %q", TagBoot)
	}
	if err := CheckTags(withBoot(c.Tags, bootPlaceholder)); err != nil {
		return bad("Tags", "%v", err)
	}
	for i, s := range c.Seeds {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return bad(fmt.Sprintf("Seeds[%d]", i), "%q: %v", s, err)
		}
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"JoinRetryInterval", c.JoinRetryInterval}, {"ReconnectTimeout", c.ReconnectTimeout},
		{"TombstoneTimeout", c.TombstoneTimeout}, {"ReapInterval", c.ReapInterval},
		{"ReconnectInterval", c.ReconnectInterval}, {"DeadNodeReclaimTime", c.DeadNodeReclaimTime},
		{"Timing.ProbeInterval", c.Timing.ProbeInterval}, {"Timing.ProbeTimeout", c.Timing.ProbeTimeout},
		{"Timing.GossipInterval", c.Timing.GossipInterval}, {"Timing.PushPullInterval", c.Timing.PushPullInterval},
		{"Timing.TCPTimeout", c.Timing.TCPTimeout}, {"Timing.GossipToTheDeadTime", c.Timing.GossipToTheDeadTime},
		{"Timing.BroadcastTimeout", c.Timing.BroadcastTimeout}, {"Timing.LeavePropagateDelay", c.Timing.LeavePropagateDelay},
	}
	for _, d := range durations {
		if d.v < 0 {
			return bad(d.name, "is negative (%v)", d.v)
		}
	}
	ints := []struct {
		name string
		v    int
	}{
		{"JoinMaxAttempts", c.JoinMaxAttempts}, {"QueueSize", c.QueueSize},
		{"Timing.SuspicionMult", c.Timing.SuspicionMult}, {"Timing.SuspicionMaxTimeoutMult", c.Timing.SuspicionMaxTimeoutMult},
		{"Timing.GossipNodes", c.Timing.GossipNodes}, {"Timing.RetransmitMult", c.Timing.RetransmitMult},
		{"Timing.QueryTimeoutMult", c.Timing.QueryTimeoutMult},
	}
	for _, x := range ints {
		if x.v < 0 {
			return bad(x.name, "is negative (%d)", x.v)
		}
	}
	if t := c.Timing.withDefaults(); t.ProbeTimeout >= t.ProbeInterval {
		return bad("Timing.ProbeTimeout", "(%v) must be less than Timing.ProbeInterval (%v)", t.ProbeTimeout, t.ProbeInterval)
	}
	if len(c.Keys) > 0 && c.KeyFile != "" {
		return bad("Keys", "and KeyFile are both set; set one")
	}
	for i, k := range c.Keys {
		if _, err := decodeKey(k); err != nil {
			return bad(fmt.Sprintf("Keys[%d]", i), "%v", err)
		}
	}
	return nil
}

// splitHostPort splits "host:port"; zeroPort says whether port 0 is valid.
func splitHostPort(addr string, zeroPort bool) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number in 0-65535", p)
	}
	if port == 0 && !zeroPort {
		return "", 0, fmt.Errorf("port must not be 0")
	}
	return host, port, nil
}
