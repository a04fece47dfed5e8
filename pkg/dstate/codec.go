package dstate

import (
	"encoding/binary"
	"fmt"
)

// Wire layout (all integers varint-encoded as in encoding/binary unless
// stated):
//
//	byte    protocol version (ProtocolVersion)
//	byte    kind
//	FullSnapshot, DeltaUpdate:
//	        string state, string source, uvarint incarnation, uvarint age,
//	        uvarint wire version, varint created ms, varint modified ms,
//	        varint sent ms, bytes data
//	RequestSnapshot:
//	        string state, string source, varint sent ms
//	SnapshotChunk:
//	        the FullSnapshot fields up to sent ms, uvarint stream ID,
//	        uvarint chunk index,
//	        uvarint bytes of the stream before this chunk, byte last (0 or
//	        1), bytes chunk
//	SnapshotPull:
//	        string state, string source, uvarint incarnation, uvarint age,
//	        uvarint stream ID, uvarint next chunk index, byte stop (0 or 1),
//	        varint sent ms
//	BatchedChangeFeed:
//	        string source, varint sent ms, uvarint count,
//	        count × (string state, string source, uvarint incarnation, uvarint age)
//	Digest:
//	        string source, varint sent ms, uvarint count,
//	        count × (string state, uvarint incarnation, uvarint age),
//	        state names strictly increasing (each entry's source is the
//	        message's)
//
// A string or bytes field is a uvarint length followed by that many bytes.
// Nothing may follow the last field.

// DefaultMaxPayload is the largest Data a decoder accepts by default.
const DefaultMaxPayload = 16 << 20

// Default limits of [DecodeLimits] besides the payload.
const (
	// DefaultMaxName is the longest state name or node ID by default.
	DefaultMaxName = 1024
	// DefaultMaxNotifications is the most notices one change feed carries
	// by default.
	DefaultMaxNotifications = 65536
	// DefaultMaxFeedStates is the most distinct states one change feed
	// names by default.
	DefaultMaxFeedStates = 4096
	// DefaultMaxFeedPeers is the most distinct source nodes one change feed
	// names by default.
	DefaultMaxFeedPeers = 1024
	// DefaultMaxDigestEntries is the most entries (states) one digest
	// carries by default.
	DefaultMaxDigestEntries = 4096
)

// Names of the decode limits, as [DeserializeError.Limit] reports them and
// metrics label them.
const (
	LimitSnapshotBytes = "snapshot_bytes"
	LimitDeltaBytes    = "delta_bytes"
	LimitNameBytes     = "name_bytes"
	LimitFeedNotices   = "feed_notifications"
	LimitFeedStates    = "feed_states"
	LimitFeedPeers     = "feed_peers"
	LimitDigestEntries = "digest_entries"
	LimitChunkBytes    = "chunk_bytes"
)

// DecodeLimits bound what a decoder accepts, so that no input can make it
// allocate more than the limits allow. A zero field means its default. An
// input over a limit is a *DeserializeError whose Limit names it.
type DecodeLimits struct {
	// MaxPayload is the default of MaxSnapshot and MaxDelta, in bytes
	// (default 16 MiB).
	MaxPayload int
	// MaxSnapshot is the largest full-snapshot payload in bytes (default
	// MaxPayload).
	MaxSnapshot int
	// MaxDelta is the largest delta payload in bytes (default MaxPayload).
	MaxDelta int
	// MaxChunk is the largest chunk of a streamed snapshot in bytes
	// (default MaxDelta). A chunk whose stream would pass MaxSnapshot with
	// it is refused as over MaxSnapshot.
	MaxChunk int
	// MaxName is the longest state name or node ID (default 1024).
	MaxName int
	// MaxNotifications is the most notices in one feed (default 65536).
	MaxNotifications int
	// MaxFeedStates is the most distinct state names one feed may name
	// (default 4096).
	MaxFeedStates int
	// MaxFeedPeers is the most distinct source nodes one feed may name
	// (default 1024).
	MaxFeedPeers int
	// MaxDigestEntries is the most entries in one digest (default 4096).
	MaxDigestEntries int
	// Names, when set, holds strings the caller already has (its state
	// names, its peers' IDs), each mapped to itself: a decoded state name
	// or node ID equal to one of them is that string, and costs no
	// allocation. The decoder only reads it; it must not change while a
	// decode uses it.
	Names map[string]string
	// From, when set, is the node the frame came from (a transport that
	// authenticates its peers knows it): a source or requester ID equal to
	// it decodes to From's string without a lookup in Names.
	From NodeID
}

// WithDefaults returns l with every zero or negative field set to its
// default.
func (l DecodeLimits) WithDefaults() DecodeLimits {
	l.setDefaults()
	return l
}

// setDefaults is WithDefaults in place.
func (l *DecodeLimits) setDefaults() {
	if l.MaxPayload <= 0 {
		l.MaxPayload = DefaultMaxPayload
	}
	if l.MaxSnapshot <= 0 {
		l.MaxSnapshot = l.MaxPayload
	}
	if l.MaxDelta <= 0 {
		l.MaxDelta = l.MaxPayload
	}
	if l.MaxChunk <= 0 {
		l.MaxChunk = l.MaxDelta
	}
	if l.MaxName <= 0 {
		l.MaxName = DefaultMaxName
	}
	if l.MaxNotifications <= 0 {
		l.MaxNotifications = DefaultMaxNotifications
	}
	if l.MaxFeedStates <= 0 {
		l.MaxFeedStates = DefaultMaxFeedStates
	}
	if l.MaxFeedPeers <= 0 {
		l.MaxFeedPeers = DefaultMaxFeedPeers
	}
	if l.MaxDigestEntries <= 0 {
		l.MaxDigestEntries = DefaultMaxDigestEntries
	}
}

// appendStateHeader appends the header a FullSnapshot, a DeltaUpdate and a
// SnapshotChunk share: state, source, generation, wire version and times.
func appendStateHeader(dst []byte, m *WireMessage) []byte {
	dst = appendString(dst, m.State)
	dst = appendString(dst, string(m.Source))
	dst = binary.AppendUvarint(dst, m.Generation.Incarnation)
	dst = binary.AppendUvarint(dst, m.Generation.Age)
	dst = binary.AppendUvarint(dst, uint64(m.WireVersion))
	dst = binary.AppendVarint(dst, m.CreatedUnixMs)
	dst = binary.AppendVarint(dst, m.ModifiedUnixMs)
	return binary.AppendVarint(dst, m.SentUnixMs)
}

// stateHeader decodes what appendStateHeader wrote into m.
func (d *decoder) stateHeader(m *WireMessage) {
	m.State = d.name("state name")
	m.Source = d.node("source node")
	m.Generation.Incarnation = d.uvarint("incarnation")
	m.Generation.Age = d.uvarint("age")
	m.WireVersion = d.uint32("wire version")
	m.CreatedUnixMs = d.varint("created time")
	m.ModifiedUnixMs = d.varint("modified time")
	m.SentUnixMs = d.varint("sent time")
}

// AppendWire appends the encoding of m to dst and returns the extended
// buffer. It does not allocate when dst has room.
func AppendWire(dst []byte, m *WireMessage) []byte {
	dst = append(dst, ProtocolVersion, byte(m.Kind))
	switch m.Kind {
	case KindFullSnapshot, KindDeltaUpdate:
		dst = appendStateHeader(dst, m)
		dst = binary.AppendUvarint(dst, uint64(len(m.Data)))
		dst = append(dst, m.Data...)
	case KindRequestSnapshot:
		dst = appendString(dst, m.State)
		dst = appendString(dst, string(m.Source))
		dst = binary.AppendVarint(dst, m.SentUnixMs)
	case KindSnapshotChunk:
		dst = appendStateHeader(dst, m)
		dst = binary.AppendUvarint(dst, m.StreamID)
		dst = binary.AppendUvarint(dst, m.ChunkIndex)
		dst = binary.AppendUvarint(dst, m.ChunkOffset)
		dst = append(dst, boolByte(m.ChunkLast))
		dst = binary.AppendUvarint(dst, uint64(len(m.Data)))
		dst = append(dst, m.Data...)
	case KindSnapshotPull:
		dst = appendString(dst, m.State)
		dst = appendString(dst, string(m.Source))
		dst = binary.AppendUvarint(dst, m.Generation.Incarnation)
		dst = binary.AppendUvarint(dst, m.Generation.Age)
		dst = binary.AppendUvarint(dst, m.StreamID)
		dst = binary.AppendUvarint(dst, m.ChunkIndex)
		dst = append(dst, boolByte(m.ChunkLast))
		dst = binary.AppendVarint(dst, m.SentUnixMs)
	case KindBatchedChangeFeed:
		dst = appendString(dst, string(m.Source))
		dst = binary.AppendVarint(dst, m.SentUnixMs)
		dst = binary.AppendUvarint(dst, uint64(len(m.Notifications)))
		for i := range m.Notifications {
			n := &m.Notifications[i]
			dst = appendString(dst, n.State)
			dst = appendString(dst, string(n.Source))
			dst = binary.AppendUvarint(dst, n.Generation.Incarnation)
			dst = binary.AppendUvarint(dst, n.Generation.Age)
		}
	case KindDigest:
		dst = appendString(dst, string(m.Source))
		dst = binary.AppendVarint(dst, m.SentUnixMs)
		dst = binary.AppendUvarint(dst, uint64(len(m.Notifications)))
		for i := range m.Notifications {
			n := &m.Notifications[i]
			dst = appendString(dst, n.State)
			dst = binary.AppendUvarint(dst, n.Generation.Incarnation)
			dst = binary.AppendUvarint(dst, n.Generation.Age)
		}
	}
	return dst
}

// EncodeWire returns the encoding of m in a new buffer of the exact size.
func EncodeWire(m *WireMessage) []byte {
	return AppendWire(make([]byte, 0, EncodedSize(m)), m)
}

// EncodedSize returns the exact length of m's encoding.
func EncodedSize(m *WireMessage) int {
	n := 2
	switch m.Kind {
	case KindFullSnapshot, KindDeltaUpdate:
		n += stringSize(m.State) + stringSize(string(m.Source))
		n += uvarintSize(m.Generation.Incarnation) + uvarintSize(m.Generation.Age) + uvarintSize(uint64(m.WireVersion))
		n += varintSize(m.CreatedUnixMs) + varintSize(m.ModifiedUnixMs) + varintSize(m.SentUnixMs)
		n += uvarintSize(uint64(len(m.Data))) + len(m.Data)
	case KindRequestSnapshot:
		n += stringSize(m.State) + stringSize(string(m.Source)) + varintSize(m.SentUnixMs)
	case KindSnapshotChunk:
		n += stringSize(m.State) + stringSize(string(m.Source))
		n += uvarintSize(m.Generation.Incarnation) + uvarintSize(m.Generation.Age) + uvarintSize(uint64(m.WireVersion))
		n += varintSize(m.CreatedUnixMs) + varintSize(m.ModifiedUnixMs) + varintSize(m.SentUnixMs)
		n += uvarintSize(m.StreamID) + uvarintSize(m.ChunkIndex) + uvarintSize(m.ChunkOffset) + 1
		n += uvarintSize(uint64(len(m.Data))) + len(m.Data)
	case KindSnapshotPull:
		n += stringSize(m.State) + stringSize(string(m.Source))
		n += uvarintSize(m.Generation.Incarnation) + uvarintSize(m.Generation.Age)
		n += uvarintSize(m.StreamID) + uvarintSize(m.ChunkIndex) + 1 + varintSize(m.SentUnixMs)
	case KindBatchedChangeFeed:
		n += stringSize(string(m.Source)) + varintSize(m.SentUnixMs) + uvarintSize(uint64(len(m.Notifications)))
		for i := range m.Notifications {
			x := &m.Notifications[i]
			n += stringSize(x.State) + stringSize(string(x.Source)) + uvarintSize(x.Generation.Incarnation) + uvarintSize(x.Generation.Age)
		}
	case KindDigest:
		n += stringSize(string(m.Source)) + varintSize(m.SentUnixMs) + uvarintSize(uint64(len(m.Notifications)))
		for i := range m.Notifications {
			x := &m.Notifications[i]
			n += stringSize(x.State) + uvarintSize(x.Generation.Incarnation) + uvarintSize(x.Generation.Age)
		}
	}
	return n
}

// DecodeWire decodes one message with the default limits. See
// [DecodeWireLimits].
func DecodeWire(b []byte) (WireMessage, error) { return DecodeWireLimits(b, DecodeLimits{}) }

// DecodeWireLimits decodes one message. The returned message's Data aliases
// b. Any truncated, oversized, unknown or trailing input is a
// *DeserializeError (ErrUnknownVersion for another protocol version,
// ErrMalformed otherwise) whose text says what was wrong. It never panics
// and allocates at most the limits allow.
func DecodeWireLimits(b []byte, lim DecodeLimits) (WireMessage, error) {
	var m WireMessage
	if len(b) < 2 {
		return m, MalformedError("wire: message of %d bytes is shorter than its 2-byte header", len(b))
	}
	if b[0] != ProtocolVersion {
		return m, &DeserializeError{Kind: ErrUnknownVersion, Version: uint32(b[0]), Detail: fmt.Sprintf("wire protocol version %d is not supported (want %d)", b[0], ProtocolVersion)}
	}
	m.Kind = MessageKind(b[1])
	d := decoder{buf: b, off: 2, lim: lim}
	d.lim.setDefaults()
	switch m.Kind {
	case KindFullSnapshot, KindDeltaUpdate:
		d.stateHeader(&m)
		if m.Kind == KindFullSnapshot {
			m.Data = d.limited("snapshot payload", d.lim.MaxSnapshot, LimitSnapshotBytes)
		} else {
			m.Data = d.limited("delta payload", d.lim.MaxDelta, LimitDeltaBytes)
		}
	case KindRequestSnapshot:
		m.State = d.name("state name")
		m.Source = d.node("requester")
		m.SentUnixMs = d.varint("sent time")
	case KindSnapshotChunk:
		d.stateHeader(&m)
		m.StreamID = d.uvarint("stream ID")
		m.ChunkIndex = d.uvarint("chunk index")
		m.ChunkOffset = d.uvarint("chunk offset")
		m.ChunkLast = d.flag("last-chunk flag")
		m.Data = d.limited("snapshot chunk", d.lim.MaxChunk, LimitChunkBytes)
		if d.err == nil && (m.ChunkOffset > uint64(d.lim.MaxSnapshot) || uint64(len(m.Data)) > uint64(d.lim.MaxSnapshot)-m.ChunkOffset) {
			d.failLimit(LimitSnapshotBytes, "wire: snapshot chunk %d of %d bytes after %d bytes of its stream exceeds the snapshot limit of %d",
				m.ChunkIndex, len(m.Data), m.ChunkOffset, d.lim.MaxSnapshot)
		}
	case KindSnapshotPull:
		m.State = d.name("state name")
		m.Source = d.node("requester")
		m.Generation.Incarnation = d.uvarint("incarnation")
		m.Generation.Age = d.uvarint("age")
		m.StreamID = d.uvarint("stream ID")
		m.ChunkIndex = d.uvarint("next chunk index")
		m.ChunkLast = d.flag("stop flag")
		m.SentUnixMs = d.varint("sent time")
	case KindBatchedChangeFeed:
		m.Source = d.node("source node")
		m.SentUnixMs = d.varint("sent time")
		count := d.uvarint("notification count")
		// Each notice takes at least 4 bytes, which bounds the count by the
		// input before anything is allocated.
		if d.err == nil {
			if count > uint64(d.lim.MaxNotifications) {
				d.failLimit(LimitFeedNotices, "wire: %d notifications exceed the limit of %d", count, d.lim.MaxNotifications)
			} else if count > uint64(len(b)-d.off)/4 {
				d.fail("wire: %d notifications cannot fit in the %d bytes left", count, len(b)-d.off)
			}
		}
		if d.err == nil && count > 0 {
			m.Notifications = make([]ChangeNotification, count)
			for i := range m.Notifications {
				n := &m.Notifications[i]
				n.State = d.name("notification state name")
				n.Source = NodeID(d.name("notification source"))
				n.Generation.Incarnation = d.uvarint("notification incarnation")
				n.Generation.Age = d.uvarint("notification age")
				if d.err != nil {
					break
				}
			}
			if d.err == nil {
				d.checkFeedNames(m.Notifications)
			}
		}
	case KindDigest:
		m.Source = d.node("source node")
		m.SentUnixMs = d.varint("sent time")
		m.Notifications = d.digestEntries(m.Source)
	default:
		return WireMessage{}, MalformedError("wire: unknown message kind %d", b[1])
	}
	if d.err == nil && d.off != len(b) {
		d.fail("wire: %d trailing bytes after %s", len(b)-d.off, m.Kind)
	}
	if d.err != nil {
		return WireMessage{}, d.err
	}
	return m, nil
}

type decoder struct {
	buf []byte
	off int
	lim DecodeLimits
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = MalformedError(format, args...)
	}
}

func (d *decoder) uvarint(field string) uint64 { return d.uvarintOf(field, "") }

// uvarintOf reads a uvarint whose name in errors is field+suffix; the name
// is only built on error, so reading allocates nothing.
func (d *decoder) uvarintOf(field, suffix string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail("wire: truncated %s%s at byte %d", field, suffix, d.off)
		} else {
			d.fail("wire: %s%s at byte %d overflows 64 bits", field, suffix, d.off)
		}
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		if n == 0 {
			d.fail("wire: truncated %s at byte %d", field, d.off)
		} else {
			d.fail("wire: %s at byte %d overflows 64 bits", field, d.off)
		}
		return 0
	}
	d.off += n
	return v
}

// flag reads a byte that must be 0 or 1.
func (d *decoder) flag(field string) bool {
	if d.err != nil {
		return false
	}
	if d.off >= len(d.buf) {
		d.fail("wire: truncated %s at byte %d", field, d.off)
		return false
	}
	b := d.buf[d.off]
	if b > 1 {
		d.fail("wire: %s at byte %d is %d, want 0 or 1", field, d.off, b)
		return false
	}
	d.off++
	return b == 1
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func (d *decoder) uint32(field string) uint32 {
	v := d.uvarint(field)
	if v > 1<<32-1 {
		d.fail("wire: %s %d exceeds 32 bits", field, v)
		return 0
	}
	return uint32(v)
}

// failLimit records an input over the named limit.
func (d *decoder) failLimit(limit, format string, args ...any) {
	if d.err == nil {
		d.err = &DeserializeError{Kind: ErrMalformed, Limit: limit, Detail: fmt.Sprintf(format, args...)}
	}
}

// checkFeedNames enforces MaxFeedStates and MaxFeedPeers on a decoded feed.
// Notices are usually grouped by state and source, so counting changes
// between neighbours first avoids a map for every ordinary feed.
func (d *decoder) checkFeedNames(ns []ChangeNotification) {
	if len(ns) <= min(d.lim.MaxFeedStates, d.lim.MaxFeedPeers) {
		return
	}
	states := make(map[string]struct{}, min(len(ns), d.lim.MaxFeedStates+1))
	peers := make(map[NodeID]struct{}, min(len(ns), d.lim.MaxFeedPeers+1))
	for i := range ns {
		states[ns[i].State] = struct{}{}
		peers[ns[i].Source] = struct{}{}
		if len(states) > d.lim.MaxFeedStates {
			d.failLimit(LimitFeedStates, "wire: change feed names more states than the limit of %d", d.lim.MaxFeedStates)
			return
		}
		if len(peers) > d.lim.MaxFeedPeers {
			d.failLimit(LimitFeedPeers, "wire: change feed names more source nodes than the limit of %d", d.lim.MaxFeedPeers)
			return
		}
	}
}

// digestEntries reads a digest's entry count and entries, each about
// source. The count is bounded by MaxDigestEntries and by the input left
// (an entry takes at least 3 bytes) before anything is allocated; state
// names must be strictly increasing, so no state is named twice.
func (d *decoder) digestEntries(source NodeID) []ChangeNotification {
	count := d.uvarint("digest entry count")
	if d.err != nil || count == 0 {
		return nil
	}
	if count > uint64(d.lim.MaxDigestEntries) {
		d.failLimit(LimitDigestEntries, "wire: digest of %d entries exceeds the limit of %d", count, d.lim.MaxDigestEntries)
		return nil
	}
	if count > uint64(len(d.buf)-d.off)/3 {
		d.fail("wire: %d digest entries cannot fit in the %d bytes left", count, len(d.buf)-d.off)
		return nil
	}
	out := make([]ChangeNotification, count)
	for i := range out {
		e := &out[i]
		e.State = d.name("digest state name")
		e.Source = source
		e.Generation.Incarnation = d.uvarint("digest incarnation")
		e.Generation.Age = d.uvarint("digest age")
		if d.err != nil {
			return nil
		}
		if i > 0 && out[i-1].State >= e.State {
			d.fail("wire: digest entry %d (state %q) does not follow %q in increasing state order", i, e.State, out[i-1].State)
			return nil
		}
	}
	return out
}

func (d *decoder) span(field string, max int) []byte { return d.spanLimit(field, max, LimitNameBytes) }

func (d *decoder) spanLimit(field string, max int, limit string) []byte {
	n := d.uvarintOf(field, " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.failLimit(limit, "wire: %s of %d bytes exceeds the limit of %d", field, n, max)
		return nil
	}
	if n > uint64(len(d.buf)-d.off) {
		d.fail("wire: truncated %s: %d bytes declared, %d left", field, n, len(d.buf)-d.off)
		return nil
	}
	s := d.buf[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return s
}

// node decodes a node ID: From's string when it is From (see
// DecodeLimits.From), else as name does.
func (d *decoder) node(field string) NodeID {
	b := d.span(field, d.lim.MaxName)
	if from := d.lim.From; from != "" && string(b) == string(from) {
		return from
	}
	return NodeID(d.known(b))
}

func (d *decoder) name(field string) string {
	return d.known(d.span(field, d.lim.MaxName))
}

// known returns b as a string: the one in Names when it is there.
func (d *decoder) known(b []byte) string {
	if s, ok := d.lim.Names[string(b)]; ok {
		return s
	}
	return string(b)
}

func (d *decoder) limited(field string, max int, limit string) []byte {
	return d.spanLimit(field, max, limit)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func stringSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

func uvarintSize(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintSize(v int64) int {
	ux := uint64(v) << 1
	if v < 0 {
		ux = ^ux
	}
	return uvarintSize(ux)
}
