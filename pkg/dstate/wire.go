package dstate

import (
	"fmt"
	"strings"
)

// ProtocolVersion is the version of the wire encoding this package writes
// and the only one it reads.
const ProtocolVersion = 1

// MessageKind is the kind of a [WireMessage].
type MessageKind uint8

// The message kinds. The numeric values are part of the wire format.
const (
	// KindFullSnapshot carries the sender's whole view of a state.
	KindFullSnapshot MessageKind = 1
	// KindDeltaUpdate carries one view delta; Generation is the generation
	// after applying it (age advances by exactly one).
	KindDeltaUpdate MessageKind = 2
	// KindRequestSnapshot asks the receiver for a FullSnapshot of its state;
	// Source is the requester.
	KindRequestSnapshot MessageKind = 3
	// KindBatchedChangeFeed carries change notices of any states; Source is
	// the node whose aggregator sent it. Receivers act only on the notices
	// about Source itself: notices are never relayed.
	KindBatchedChangeFeed MessageKind = 4
	// KindDigest carries the generation of every state its Source owns,
	// one entry per state in Notifications (each entry's Source is the
	// message's Source), sorted by state name. A receiver that holds an
	// older view of one of them pulls it (see digest.go). Nodes of releases
	// without digests refuse the kind as malformed and drop the message.
	KindDigest MessageKind = 5
)

// String names the kind.
func (k MessageKind) String() string {
	switch k {
	case KindFullSnapshot:
		return "FullSnapshot"
	case KindDeltaUpdate:
		return "DeltaUpdate"
	case KindRequestSnapshot:
		return "RequestSnapshot"
	case KindBatchedChangeFeed:
		return "BatchedChangeFeed"
	case KindDigest:
		return "Digest"
	}
	return fmt.Sprintf("MessageKind(%d)", uint8(k))
}

// ChangeNotification announces that a node's state reached a generation.
type ChangeNotification struct {
	State      string
	Source     NodeID
	Generation Generation
}

// String formats the notice as "state@source v1:2".
func (n ChangeNotification) String() string {
	return fmt.Sprintf("%s@%s %s", n.State, n.Source, n.Generation)
}

// WireMessage is one message between nodes: a sync message of one state
// (FullSnapshot, DeltaUpdate, RequestSnapshot) or a BatchedChangeFeed. It is
// a flat struct so the hot paths do not allocate per message; the fields a
// kind does not use are zero.
type WireMessage struct {
	Kind MessageKind
	// State is the state name (empty for BatchedChangeFeed).
	State string
	// Source is the sending node: the owner of the view for snapshots and
	// deltas, the requester for RequestSnapshot, the aggregator's node for
	// a feed.
	Source NodeID
	// Generation of the carried view (snapshots and deltas).
	Generation Generation
	// WireVersion of Data (snapshots and deltas).
	WireVersion uint32
	// CreatedUnixMs and ModifiedUnixMs are the owner's timestamps of the
	// state (snapshots and deltas).
	CreatedUnixMs  int64
	ModifiedUnixMs int64
	// SentUnixMs is the sender's wall clock when the message was built; the
	// receiver measures sync latency from it.
	SentUnixMs int64
	// Data is the encoded view (snapshot) or view delta (delta). A decoded
	// message's Data aliases the decoded buffer.
	Data []byte
	// Notifications of a BatchedChangeFeed, or the entries of a Digest.
	Notifications []ChangeNotification
}

// String is a stable, human-readable description used by tests and tools,
// e.g. "DeltaUpdate(kv from n1 v5:3 wire=1 12B)".
func (m *WireMessage) String() string {
	switch m.Kind {
	case KindFullSnapshot, KindDeltaUpdate:
		return fmt.Sprintf("%s(%s from %s %s wire=%d %dB)", m.Kind, m.State, m.Source, m.Generation, m.WireVersion, len(m.Data))
	case KindRequestSnapshot:
		return fmt.Sprintf("%s(%s by %s)", m.Kind, m.State, m.Source)
	case KindBatchedChangeFeed, KindDigest:
		var b strings.Builder
		fmt.Fprintf(&b, "%s(from %s:", m.Kind, m.Source)
		for i, n := range m.Notifications {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte(' ')
			b.WriteString(n.String())
		}
		b.WriteByte(')')
		return b.String()
	}
	return m.Kind.String()
}
