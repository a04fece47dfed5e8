package dstate

import "context"

// Transport delivers encoded frames (one encoded [WireMessage] each) between
// nodes. The host owns one Transport per node and is its only user; every
// method is safe for concurrent use.
//
// Who calls what:
//   - Start and Close: the goroutine that creates or closes the host's node,
//     once each. Start does not block on the network; Close may block until
//     ctx is done.
//   - SetPeer and RemovePeer: the membership feed's delivery goroutine (see
//     [ClusterEvents]). They must not block on the network.
//   - Send: the state actors' goroutines and the host's change-feed actor,
//     several at once. It never blocks: a frame is queued for the peer and
//     an error is returned at once when the peer is unknown or its queue is
//     full.
//   - Addr: any goroutine; it does not block.
//
// Frames to one peer arrive in the order they were sent, unless a connection
// breaks in between (frames queued or in flight then may be lost: the
// protocol recovers through gaps, pulls and periodic sync).
//
// Optional capabilities, detected by type assertion: [LinkNotifier],
// [FrameLender] and [BatchLender].
type Transport interface {
	// Start begins accepting and delivering inbound frames to deliver. It is
	// called once. deliver may be called concurrently from several
	// goroutines of the transport (one per connection); it does not block
	// for long (the host decodes the frame and hands it to a mailbox) and it
	// owns frame (the transport never reuses it).
	Start(deliver func(from NodeID, frame []byte)) error
	// SetPeer records or updates the address of a peer; frames to it are
	// sent to that address from now on. It does not block.
	SetPeer(id NodeID, addr string)
	// RemovePeer forgets a peer and closes its connection; queued frames are
	// dropped. It does not block.
	RemovePeer(id NodeID)
	// Send queues frame for the peer without blocking. The transport must
	// not modify frame: the host passes the same frame to several peers.
	Send(to NodeID, frame []byte) error
	// Addr is the address peers connect to (the listener's address). It
	// does not block.
	Addr() string
	// Close stops the listener and all connections, flushing queued frames
	// until ctx is done. It blocks until then at most.
	Close(ctx context.Context) error
}

// FrameLender is an optional capability of a [Transport], detected by type
// assertion: inbound frames are lent to the host rather than given, so that
// a connection reads message after message into one buffer. The host uses
// it when it handles most messages before deliver returns (see
// [InlineSender]).
type FrameLender interface {
	// StartLending is Start with a deliver that borrows frame: frame stays
	// valid only until deliver returns, unless deliver returns true (kept),
	// which hands frame to the host for good. The transport may read the
	// next message into a frame that was not kept.
	StartLending(deliver func(from NodeID, frame []byte) (kept bool)) error
	// ReturnFrame gives back a frame deliver kept, once the host is done
	// with it (nothing refers to it any more), so that the transport may
	// read into it again. Calling it is optional (a frame not returned is
	// left to the collector); it does not block.
	ReturnFrame(frame []byte)
}

// BatchLender is an optional capability of a [Transport] that lends
// frames, detected by type assertion: a connection hands the host every
// frame that has already arrived in its read buffer at once, so that the
// host can handle a run of messages together (see
// [Engine.HandleDeltaRun]: a peer's view is published once per run of its
// deltas instead of once per delta).
type BatchLender interface {
	FrameLender
	// StartLendingBatches is StartLending with deliver given one or more
	// frames of one connection, in the order they arrived. deliver marks
	// in kept (kept[i] for frames[i], all false when it is called) the
	// frames it keeps, which are the host's as with StartLending (given
	// back with ReturnFrame); the others stay valid only until it
	// returns.
	StartLendingBatches(deliver func(from NodeID, frames [][]byte, kept []bool)) error
}

// LinkNotifier is an optional capability of a [Transport], detected by type
// assertion: the transport tells the host each time an outbound link to a
// peer is established, the first time and after every reconnect. Frames
// sent on a link that broke may be lost without an error, so the host
// answers the event with a digest of its states to that peer (see
// [KindDigest]), which makes the peer pull what it missed.
type LinkNotifier interface {
	// NotifyLinkUp registers fn; the host calls it once, before Start, from
	// the goroutine that creates the node. fn is called on the transport's
	// goroutines, possibly several at once; it does not block (the host
	// only schedules the digest).
	NotifyLinkUp(fn func(peer NodeID))
}
