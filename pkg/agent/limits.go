package agent

import (
	"fmt"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// applyTransportLimits sets the transport's limits from cfg.
func applyTransportLimits(cfg Config, t *transport.Config) {
	if cfg.MaxFrameBytes > 0 {
		t.MaxFrameSize = cfg.MaxFrameBytes
	}
	if cfg.MaxMessageBytes > 0 {
		t.MaxMessageSize = cfg.MaxMessageBytes
		t.MaxFrameSize = min(t.MaxFrameSize, cfg.MaxMessageBytes)
	}
	if cfg.PeerQueueFrames > 0 {
		t.QueueSize = cfg.PeerQueueFrames
	}
	t.LogInterval = time.Duration(cfg.LimitLogInterval)
	t.MaxReassemblySize = cfg.MaxReassemblyBytes
	t.MaxConns, t.MaxConnsPerHost = cfg.TransportMaxConns, cfg.TransportMaxConnsPerHost
	if cfg.TransportIdleTimeout > 0 {
		t.IdleTimeout, t.KeepaliveInterval = time.Duration(cfg.TransportIdleTimeout), 0
	}
	t.ReadTimeout = time.Duration(cfg.TransportReadTimeout)
	if cfg.TransportWriteTimeout > 0 {
		t.WriteTimeout = time.Duration(cfg.TransportWriteTimeout)
	}
}

// validateTransportLimits checks the transport's connection caps, timeouts
// and reassembly budget under their config names.
func validateTransportLimits(c Config) error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	maxMessage := transport.DefaultMaxMessageSize
	if c.MaxMessageBytes > 0 {
		maxMessage = c.MaxMessageBytes
	}
	switch {
	case c.MaxReassemblyBytes < 0:
		return bad("max_reassembly_bytes", "%d is negative", c.MaxReassemblyBytes)
	case c.MaxReassemblyBytes > 0 && c.MaxReassemblyBytes < maxMessage:
		return bad("max_reassembly_bytes", "%d is smaller than max_message_bytes (%d): a message of that size could never be received",
			c.MaxReassemblyBytes, maxMessage)
	case c.TransportMaxConns < 0:
		return bad("transport_max_conns", "%d is negative", c.TransportMaxConns)
	case c.TransportMaxConnsPerHost < 0:
		return bad("transport_max_conns_per_host", "%d is negative", c.TransportMaxConnsPerHost)
	case c.TransportIdleTimeout < 0:
		return bad("transport_idle_timeout", "%s is negative", time.Duration(c.TransportIdleTimeout))
	case c.TransportIdleTimeout > 0 && c.TransportIdleTimeout < Duration(3*time.Millisecond):
		return bad("transport_idle_timeout", "%s is too short to send keepalives within it", time.Duration(c.TransportIdleTimeout))
	case c.TransportReadTimeout < 0:
		return bad("transport_read_timeout", "%s is negative", time.Duration(c.TransportReadTimeout))
	case c.TransportWriteTimeout < 0:
		return bad("transport_write_timeout", "%s is negative", time.Duration(c.TransportWriteTimeout))
	}
	return nil
}

// applyNodeLimits sets the host's decode limits from cfg.
func applyNodeLimits(cfg Config, n *node.Config) {
	n.Limits = dstate.DecodeLimits{
		MaxSnapshot: cfg.MaxSnapshotBytes, MaxDelta: cfg.MaxDeltaBytes,
		MaxNotifications: cfg.MaxFeedNotifications, MaxFeedStates: cfg.MaxFeedStates, MaxFeedPeers: cfg.MaxFeedPeers,
	}
	n.LogInterval = time.Duration(cfg.LimitLogInterval)
}
