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
	// KindSnapshotChunk carries one chunk of a streamed snapshot of the
	// sender's view (see [ChunkedViewCodec]): the header of a FullSnapshot,
	// then the stream's ID, the chunk's index in it (from 0), the bytes of the
	// stream before it and whether it is the last. The receiver decodes the
	// chunks in order, keeps its view until the last one, and answers each
	// chunk but the last with a KindSnapshotPull. A node sends it only to a
	// peer that sent it a chunk or a pull, or unsolicited when a peer joins
	// (nodes of releases without streams drop the kind as malformed and
	// pull the state with RequestSnapshot, answered with a FullSnapshot).
	KindSnapshotChunk MessageKind = 6
	// KindSnapshotPull asks the receiver for chunks of its snapshot stream;
	// Source is the requester. A zero Generation starts a new stream of the
	// receiver's current view; otherwise ChunkIndex is the next chunk the
	// requester wants of the stream StreamID of Generation (the sender keeps a
	// window of chunks beyond it in flight), or ChunkLast asks it to stop
	// that stream.
	KindSnapshotPull MessageKind = 7
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
	case KindSnapshotChunk:
		return "SnapshotChunk"
	case KindSnapshotPull:
		return "SnapshotPull"
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
	// StreamID identifies a SnapshotChunk's stream among its owner's
	// streams (the owner numbers them), and the stream a SnapshotPull is
	// about.
	StreamID uint64
	// ChunkIndex is a SnapshotChunk's index in its stream (from 0), or
	// the next chunk a SnapshotPull asks for.
	ChunkIndex uint64
	// ChunkOffset is the number of bytes of a SnapshotChunk's stream
	// before it.
	ChunkOffset uint64
	// ChunkLast marks the last SnapshotChunk of a stream; on a
	// SnapshotPull it asks the owner to stop the stream.
	ChunkLast bool
}

// String is a stable, human-readable description used by tests and tools,
// e.g. "DeltaUpdate(kv from n1 v5:3 wire=1 12B)".
func (m *WireMessage) String() string {
	switch m.Kind {
	case KindFullSnapshot, KindDeltaUpdate:
		return fmt.Sprintf("%s(%s from %s %s wire=%d %dB)", m.Kind, m.State, m.Source, m.Generation, m.WireVersion, len(m.Data))
	case KindRequestSnapshot:
		return fmt.Sprintf("%s(%s by %s)", m.Kind, m.State, m.Source)
	case KindSnapshotChunk:
		last := ""
		if m.ChunkLast {
			last = " last"
		}
		return fmt.Sprintf("%s(%s from %s %s wire=%d stream %d #%d@%d%s %dB)", m.Kind, m.State, m.Source, m.Generation, m.WireVersion, m.StreamID, m.ChunkIndex, m.ChunkOffset, last, len(m.Data))
	case KindSnapshotPull:
		if m.ChunkLast {
			return fmt.Sprintf("%s(%s by %s %s stream %d stop)", m.Kind, m.State, m.Source, m.Generation, m.StreamID)
		}
		return fmt.Sprintf("%s(%s by %s %s stream %d next=%d)", m.Kind, m.State, m.Source, m.Generation, m.StreamID, m.ChunkIndex)
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
