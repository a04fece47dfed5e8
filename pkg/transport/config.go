package transport

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"net"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Defaults applied to zero Config fields.
const (
	// DefaultMaxFrameSize fits a 16 MiB message plus its envelope in one
	// frame.
	DefaultMaxFrameSize = 16<<20 + 4<<10
	// DefaultMaxMessageSize bounds a message sent as several frames: twice
	// the payload a node decodes by default (dstate.DefaultMaxPayload), so
	// the default reassembly budget holds two such messages at once.
	DefaultMaxMessageSize = 32 << 20
	// DefaultQueueSize is the number of frames queued per peer.
	DefaultQueueSize = 1024
	// DefaultDialTimeout bounds one TCP connect.
	DefaultDialTimeout = 5 * time.Second
	// DefaultHandshakeTimeout bounds the TLS and transport handshakes.
	DefaultHandshakeTimeout = 5 * time.Second
	// DefaultWriteTimeout bounds writing one burst of frames (or one MiB of
	// it) to a peer.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long an inbound connection may deliver
	// nothing before it is closed; dialers send a keepalive after a third
	// of it without frames.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultReadTimeout bounds receiving each started MiB of a frame once
	// its header has arrived.
	DefaultReadTimeout = 10 * time.Second
	// DefaultMaxConns bounds the inbound connections open at once.
	DefaultMaxConns = 1024
	// DefaultMaxConnsPerHost bounds the inbound connections open at once
	// from one IP address.
	DefaultMaxConnsPerHost = 64
	// DefaultMaxReassemblySize bounds the memory all partially received
	// messages hold together; the effective default is raised to
	// MaxMessageSize when that is larger, so one message of the largest
	// size always fits.
	DefaultMaxReassemblySize = 64 << 20
	// DefaultReconnectBackoffMin is the shortest wait before redialing.
	DefaultReconnectBackoffMin = 50 * time.Millisecond
	// DefaultReconnectBackoffMax is the longest wait before redialing.
	DefaultReconnectBackoffMax = 5 * time.Second
)

// MaxIDLen bounds the cluster name and the node ID sent in the handshake.
const MaxIDLen = 256

// maxFrameSizeLimit is the largest MaxFrameSize accepted (the length prefix
// is a uint32; keep well inside int on every platform).
const maxFrameSizeLimit = math.MaxInt32

// Config configures a Transport. Zero durations and sizes mean the defaults
// above; New copies the Config and never changes the caller's value.
type Config struct {
	// NodeID is this node's ID, sent in every handshake. Required, at most
	// MaxIDLen bytes.
	NodeID dstate.NodeID
	// ClusterName must be equal on both sides of a connection. At most
	// MaxIDLen bytes; empty is a valid (shared) name.
	ClusterName string
	// BindAddr is the listen address, "host:port"; port 0 picks a free one.
	BindAddr string
	// AdvertiseAddr, when set, is what Addr reports instead of the
	// listener's address (for NAT or a wildcard BindAddr).
	AdvertiseAddr string
	// MaxFrameSize bounds every frame in both directions, in bytes. A
	// longer message is sent as several frames (fragments) and joined by
	// the receiver.
	MaxFrameSize int
	// MaxMessageSize bounds a whole message, fragmented or not, in both
	// directions: Send refuses a longer one, and a peer sending one is
	// disconnected. It must be at least MaxFrameSize.
	MaxMessageSize int
	// QueueSize is the number of frames queued per peer before Send returns
	// ErrQueueFull.
	QueueSize int
	// DialTimeout bounds one TCP connect.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the TLS and transport handshakes of one
	// connection.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write to a peer (a burst of frames, each MiB
	// of it, or a keepalive); a peer that does not read for this long is
	// disconnected (counted in Stats.WriteTimeouts) and redialed.
	WriteTimeout time.Duration
	// IdleTimeout closes an inbound connection that delivers nothing, not
	// even a keepalive, for this long (counted in Stats.IdleTimeouts).
	// Dialers keep their connections open through quiet periods with
	// keepalive frames (see KeepaliveInterval), so it only cuts peers that
	// went silent or connections that never send. Every node of a cluster
	// should use the same value.
	IdleTimeout time.Duration
	// KeepaliveInterval paces keepalives: an outbound connection that
	// wrote no frame during one interval sends a 4-byte keepalive, so it
	// is never quiet for two intervals. It must be less than half
	// IdleTimeout; zero means a third of IdleTimeout.
	KeepaliveInterval time.Duration
	// ReadTimeout bounds receiving a frame once its 4-byte header has
	// arrived: the frame gets ReadTimeout for each started MiB it
	// announces, and the header of a message's next fragment ReadTimeout.
	// A sender that trickles a frame slower than that is disconnected
	// (counted in Stats.ReadTimeouts).
	ReadTimeout time.Duration
	// MaxConns bounds the inbound connections open at once, in any stage.
	// A connection over it is closed as soon as it is accepted, before
	// anything is read or allocated for it (counted in
	// Stats.ConnsRefused). Outbound connections are not counted.
	MaxConns int
	// MaxConnsPerHost bounds the inbound connections open at once from one
	// IP address, the same way (counted in Stats.HostConnsRefused). Nodes
	// sharing a host each need one.
	MaxConnsPerHost int
	// MaxReassemblySize bounds the memory that partially received
	// messages hold, across all inbound connections. A message reserves
	// its buffer from this budget as its bytes arrive and gives it back
	// once delivered; the connection whose message would pass the budget
	// is closed at once (counted in Stats.BudgetRefusals), and its sender
	// resends on a new connection what it had not finished writing.
	// Messages that come as one frame of at most 64 KiB are not charged
	// (a connection holds at most one, so MaxConns bounds them): small
	// messages still pass while large ones fill the budget. It must be at
	// least MaxMessageSize; zero means the larger of
	// DefaultMaxReassemblySize and MaxMessageSize.
	MaxReassemblySize int
	// ReconnectBackoffMin and ReconnectBackoffMax bound the wait between
	// redials: it doubles per failure with full jitter.
	ReconnectBackoffMin time.Duration
	ReconnectBackoffMax time.Duration
	// TLS, when set, secures every connection. It is used as both the
	// server config (Certificates or GetCertificate required; set
	// ClientAuth and ClientCAs for mutual TLS) and the client config
	// (RootCAs, and Certificates as the client certificate). ServerName
	// defaults to the host of the dialed address. New clones it.
	//
	// A verified peer certificate binds the peer's identity: the node ID it
	// names (its dstate://node/<id> URI SAN, or without any dstate:// URI
	// SAN its Subject CommonName; never a DNS name, see internal/certid)
	// must equal the node ID the peer claims in the handshake (accepting)
	// or the node ID expected at the address (dialing), or the connection
	// is refused with
	// ErrIdentityMismatch. With mutual TLS every peer presents one, so no
	// node can send frames under another node's ID.
	TLS *tls.Config
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger
	// LogInterval is the least time between two warnings about one peer or
	// remote address of one kind (failed handshakes, oversized frames);
	// those in between are counted and the next warning says how many.
	// Zero means one minute.
	LogInterval time.Duration
	// FaultHook is for tests only. When non-nil and it returns false for a
	// peer, Send drops the frame (counted in Stats.FaultDrops) and reports
	// success. It is called on the Send path and must be fast.
	FaultHook func(to dstate.NodeID) bool
}

// DefaultConfig returns a Config with every default filled in, listening on
// a free loopback port. NodeID must still be set. KeepaliveInterval and
// MaxReassemblySize stay zero, since their defaults follow IdleTimeout and
// MaxMessageSize.
func DefaultConfig() Config {
	return Config{
		BindAddr:            "127.0.0.1:0",
		MaxFrameSize:        DefaultMaxFrameSize,
		MaxMessageSize:      DefaultMaxMessageSize,
		QueueSize:           DefaultQueueSize,
		DialTimeout:         DefaultDialTimeout,
		HandshakeTimeout:    DefaultHandshakeTimeout,
		WriteTimeout:        DefaultWriteTimeout,
		IdleTimeout:         DefaultIdleTimeout,
		ReadTimeout:         DefaultReadTimeout,
		MaxConns:            DefaultMaxConns,
		MaxConnsPerHost:     DefaultMaxConnsPerHost,
		ReconnectBackoffMin: DefaultReconnectBackoffMin,
		ReconnectBackoffMax: DefaultReconnectBackoffMax,
	}
}

// Validate reports the first invalid field as a *ConfigError. Zero values
// that have a default are valid. It changes nothing.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	e := c.withDefaults()
	switch {
	case c.NodeID == "":
		return bad("NodeID", "is empty")
	case len(c.NodeID) > MaxIDLen:
		return bad("NodeID", "is %d bytes, longer than %d", len(c.NodeID), MaxIDLen)
	case len(c.ClusterName) > MaxIDLen:
		return bad("ClusterName", "is %d bytes, longer than %d", len(c.ClusterName), MaxIDLen)
	case c.BindAddr == "":
		return bad("BindAddr", "is empty")
	}
	if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
		return bad("BindAddr", "%q is not host:port: %v", c.BindAddr, err)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdvertiseAddr); err != nil {
			return bad("AdvertiseAddr", "%q is not host:port: %v", c.AdvertiseAddr, err)
		}
	}
	switch {
	case c.MaxFrameSize < 0 || c.MaxFrameSize > maxFrameSizeLimit:
		return bad("MaxFrameSize", "is %d, want 1..%d (0 for the default)", c.MaxFrameSize, maxFrameSizeLimit)
	case c.MaxMessageSize < 0:
		return bad("MaxMessageSize", "is %d, want a positive size (0 for the default)", c.MaxMessageSize)
	case c.MaxMessageSize != 0 && c.MaxMessageSize < c.MaxFrameSize:
		return bad("MaxMessageSize", "(%d) is less than MaxFrameSize (%d)", c.MaxMessageSize, c.MaxFrameSize)
	case c.QueueSize < 0:
		return bad("QueueSize", "is %d, want positive (0 for the default)", c.QueueSize)
	case c.DialTimeout < 0:
		return bad("DialTimeout", "is negative (%s)", c.DialTimeout)
	case c.HandshakeTimeout < 0:
		return bad("HandshakeTimeout", "is negative (%s)", c.HandshakeTimeout)
	case c.WriteTimeout < 0:
		return bad("WriteTimeout", "is negative (%s)", c.WriteTimeout)
	case c.IdleTimeout < 0:
		return bad("IdleTimeout", "is negative (%s)", c.IdleTimeout)
	case c.KeepaliveInterval < 0:
		return bad("KeepaliveInterval", "is negative (%s)", c.KeepaliveInterval)
	case 2*e.KeepaliveInterval >= e.IdleTimeout:
		return bad("KeepaliveInterval", "(%s) is not less than half IdleTimeout (%s)", e.KeepaliveInterval, e.IdleTimeout)
	case c.ReadTimeout < 0:
		return bad("ReadTimeout", "is negative (%s)", c.ReadTimeout)
	case c.MaxConns < 0:
		return bad("MaxConns", "is %d, want positive (0 for the default)", c.MaxConns)
	case c.MaxConnsPerHost < 0:
		return bad("MaxConnsPerHost", "is %d, want positive (0 for the default)", c.MaxConnsPerHost)
	case c.MaxReassemblySize < 0:
		return bad("MaxReassemblySize", "is %d, want positive (0 for the default)", c.MaxReassemblySize)
	case c.MaxReassemblySize != 0 && c.MaxReassemblySize < e.MaxMessageSize:
		return bad("MaxReassemblySize", "(%d) is less than MaxMessageSize (%d): a message of the largest size could never be received", c.MaxReassemblySize, e.MaxMessageSize)
	case c.ReconnectBackoffMin < 0:
		return bad("ReconnectBackoffMin", "is negative (%s)", c.ReconnectBackoffMin)
	case c.ReconnectBackoffMax < 0:
		return bad("ReconnectBackoffMax", "is negative (%s)", c.ReconnectBackoffMax)
	case e.ReconnectBackoffMax < e.ReconnectBackoffMin:
		return bad("ReconnectBackoffMax", "(%s) is less than ReconnectBackoffMin (%s)", e.ReconnectBackoffMax, e.ReconnectBackoffMin)
	case c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetConfigForClient == nil:
		return bad("TLS", "has no Certificates, GetCertificate or GetConfigForClient to accept connections")
	}
	return nil
}

// withDefaults returns a copy of c with defaults in zero fields and a
// non-nil logger. The TLS config is shared: New clones it.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxFrameSize == 0 {
		c.MaxFrameSize = d.MaxFrameSize
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = max(d.MaxMessageSize, c.MaxFrameSize)
	}
	if c.QueueSize == 0 {
		c.QueueSize = d.QueueSize
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = d.HandshakeTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = max(c.IdleTimeout/3, 1)
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = d.ReadTimeout
	}
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.MaxConnsPerHost == 0 {
		c.MaxConnsPerHost = d.MaxConnsPerHost
	}
	if c.MaxReassemblySize == 0 {
		c.MaxReassemblySize = max(DefaultMaxReassemblySize, c.MaxMessageSize)
	}
	if c.ReconnectBackoffMin == 0 {
		c.ReconnectBackoffMin = d.ReconnectBackoffMin
	}
	if c.ReconnectBackoffMax == 0 {
		c.ReconnectBackoffMax = max(d.ReconnectBackoffMax, c.ReconnectBackoffMin)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
