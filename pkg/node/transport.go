package node

import (
	"context"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Transport delivers encoded frames (one encoded dstate.WireMessage each)
// between nodes. The host owns one Transport per node and is its only user.
//
// Send never blocks on the network: a frame is queued for the peer and an
// error is returned at once when the peer is unknown or its queue is full.
// Frames to one peer arrive in the order they were sent, unless a connection
// breaks in between (frames queued or in flight then may be lost: the
// protocol recovers through gaps, pulls and periodic sync).
type Transport interface {
	// Start begins accepting and delivering inbound frames to deliver. It is
	// called once. deliver may be called concurrently from several
	// goroutines (one per connection); it must not block for long and it
	// owns frame (the transport never reuses it).
	Start(deliver func(from dstate.NodeID, frame []byte)) error
	// SetPeer records or updates the address of a peer; frames to it are
	// sent to that address from now on.
	SetPeer(id dstate.NodeID, addr string)
	// RemovePeer forgets a peer and closes its connection; queued frames are
	// dropped.
	RemovePeer(id dstate.NodeID)
	// Send queues frame for the peer without blocking. The transport must
	// not modify frame: the host passes the same frame to several peers.
	Send(to dstate.NodeID, frame []byte) error
	// Addr is the address peers connect to (the listener's address).
	Addr() string
	// Close stops the listener and all connections, flushing queued frames
	// until ctx is done.
	Close(ctx context.Context) error
}

// LinkNotifier is an optional capability of a Transport, detected by type
// assertion: the transport tells the host each time an outbound link to a
// peer is established, the first time and after every reconnect. Frames
// sent on a link that broke may be lost without an error, so the node
// answers the event with a digest of its states to that peer (see
// dstate.KindDigest), which makes the peer pull what it missed.
type LinkNotifier interface {
	// NotifyLinkUp registers fn; the node calls it once, before Start. fn
	// does not block and may be called from several goroutines.
	NotifyLinkUp(fn func(peer dstate.NodeID))
}
