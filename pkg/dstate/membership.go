package dstate

import "fmt"

// ClusterEventKind is the kind of a membership event.
type ClusterEventKind uint8

// The membership event kinds.
const (
	// NodeJoined: a node is alive and reachable (also after a restart).
	NodeJoined ClusterEventKind = iota + 1
	// NodeLeft: a node left gracefully.
	NodeLeft
	// NodeFailed: a node stopped answering.
	NodeFailed
	// NodeUpdated: a node's tags changed.
	NodeUpdated
	// NodeReaped: a departed node was forgotten by the membership layer.
	NodeReaped
)

// String names the kind ("joined", "left", ...).
func (k ClusterEventKind) String() string {
	switch k {
	case NodeJoined:
		return "joined"
	case NodeLeft:
		return "left"
	case NodeFailed:
		return "failed"
	case NodeUpdated:
		return "updated"
	case NodeReaped:
		return "reaped"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// ClusterEvent is one membership change.
type ClusterEvent struct {
	Kind ClusterEventKind
	Node NodeID
	// Tags are the node's advertised tags (transport address, versions...),
	// when the membership layer has them. Receivers must not modify them.
	Tags map[string]string
}

// String formats the event as "joined(n1)".
func (e ClusterEvent) String() string { return fmt.Sprintf("%s(%s)", e.Kind, e.Node) }

// SubscriptionID identifies a subscription to cluster events.
type SubscriptionID uint64

// TransportTag is the membership tag that carries a node's [Transport]
// address: a membership adapter publishes it among the node's tags, and the
// host hands it to [Transport.SetPeer] on NodeJoined and NodeUpdated.
const TransportTag = "transport"

// ClusterEvents is a membership feed. The host subscribes once per node.
//
// Who calls what:
//   - Subscribe: the goroutine that creates the host's node, once. It does
//     not block on the network.
//   - Unsubscribe: the goroutine that closes the node. It does not block;
//     a callback already running may finish after it returns (the host
//     ignores events once it is closed).
//   - The callbacks: a delivery goroutine of the membership layer (one per
//     subscription, say), one event at a time, in event order. A callback
//     does not block (the host forwards events to its actors' mailboxes
//     and updates its [Transport]'s peers) and may call Subscribe or
//     Unsubscribe without deadlock.
type ClusterEvents interface {
	// Subscribe registers fn for every following event.
	Subscribe(fn func(ClusterEvent)) (SubscriptionID, error)
	// Unsubscribe removes a subscription; removing an unknown or already
	// removed ID returns nil.
	Unsubscribe(SubscriptionID) error
}
