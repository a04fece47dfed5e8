package agent

import (
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
}

// applyNodeLimits sets the host's decode limits from cfg.
func applyNodeLimits(cfg Config, n *node.Config) {
	n.Limits = dstate.DecodeLimits{
		MaxSnapshot: cfg.MaxSnapshotBytes, MaxDelta: cfg.MaxDeltaBytes,
		MaxNotifications: cfg.MaxFeedNotifications, MaxFeedStates: cfg.MaxFeedStates, MaxFeedPeers: cfg.MaxFeedPeers,
	}
	n.LogInterval = time.Duration(cfg.LimitLogInterval)
}

// maxRequestBytes is the admin API's request body limit.
func (a *Agent) maxRequestBytes() int64 {
	if a.cfg.MaxRequestBytes > 0 {
		return int64(a.cfg.MaxRequestBytes)
	}
	return DefaultMaxRequestBytes
}
