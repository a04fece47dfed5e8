package node

import (
	"errors"
	"log/slog"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TransportTag is the membership tag that carries a node's transport
// address. It is [dstate.TransportTag], kept here for compatibility.
const TransportTag = dstate.TransportTag

// Config configures a [Node]. Runtime, Events and Transport are required.
type Config struct {
	// ID is this node's ID (the membership name). Required.
	ID dstate.NodeID
	// Runtime runs the state actors. Required.
	Runtime dstate.ActorRuntime
	// Events is the membership feed. Required.
	Events dstate.ClusterEvents
	// Transport carries frames between nodes. Required; Node starts and
	// closes it.
	Transport dstate.Transport
	// Clock defaults to dstate.SystemClock.
	Clock dstate.Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// FeedInterval is how often the change-feed aggregator flushes; zero
	// means the smallest BatchInterval of the registered feed states.
	FeedInterval time.Duration
	// Limits bound inbound message decoding; zero fields take the
	// defaults of dstate.DecodeLimits. A message over a limit is dropped,
	// counted in Stats.LimitExceeded and logged (see LogInterval).
	Limits dstate.DecodeLimits
	// LogInterval is the least time between two warnings about one peer's
	// bad input of one kind (default one minute); those in between are
	// counted and the next warning says how many.
	LogInterval time.Duration
	// DigestInterval is how often the node sends every peer one digest of
	// its states' generations, from which a peer that missed an update
	// pulls it (see dstate.KindDigest); a digest also goes to a peer at
	// once when its link is re-established, when it is alive again after
	// it failed, and shortly after a frame to it was refused. Zero means
	// DefaultDigestInterval; negative turns digests off.
	DigestInterval time.Duration
	// Stores are the persistence backends of the durable modes (Local,
	// Raft). A state whose StateConfig.Durability names a mode missing
	// here, and that brings no Persistence of its own, cannot register.
	Stores map[dstate.Durability]dstate.EnvelopeStore
}

// Validate names the first invalid field; it changes nothing.
func (c *Config) Validate() error {
	switch {
	case c.ID == "":
		return errors.New("node: Config.ID is empty")
	case c.Runtime == nil:
		return errors.New("node: Config.Runtime is nil")
	case c.Events == nil:
		return errors.New("node: Config.Events is nil")
	case c.Transport == nil:
		return errors.New("node: Config.Transport is nil")
	case c.FeedInterval < 0:
		return errors.New("node: Config.FeedInterval is negative")
	case c.LogInterval < 0:
		return errors.New("node: Config.LogInterval is negative")
	}
	return nil
}
