package agent

import (
	"context"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// gossip is the membership layer as the agent uses it (serf).
type gossip interface {
	dstate.ClusterEvents
	members() []Member
	join(addrs []string) (int, error)
	// leave announces a graceful departure.
	leave(ctx context.Context) error
	// shutdown stops gossiping without a leave.
	shutdown() error
	keyring() (KeyringStatus, error)
	keyringOp(op, key string) error
}

// consensus is the Raft group as the agent uses it.
type consensus interface {
	dstate.EnvelopeStore
	dstate.EnvelopeReader
	status(ctx context.Context) (RaftStatus, error)
	bootstrap(ctx context.Context, servers []string) error
	close() error
}
