package serfevents

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// The tag keys a node advertises so that peers know how to talk to it
// before they do. Keys are short because all tags share MaxTagsSize bytes.
const (
	// TagTransport is the node's transport address, "host:port" (the
	// address peers dial to send it frames). It is dstate.TransportTag:
	// the host reads it from NodeJoined and NodeUpdated events.
	TagTransport = dstate.TransportTag
	// TagRaft is the node's Raft address, "host:port", when it takes part
	// in Raft persistence.
	TagRaft = "raft"
	// TagRaftRole is the node's Raft role: RaftRoleVoter, RaftRoleNonvoter
	// or RaftRoleNone.
	TagRaftRole = "raft_role"
	// TagProtocol is the dstate protocol version the node speaks, in
	// decimal.
	TagProtocol = "proto"
	// TagStates lists the node's registered states and their wire versions,
	// as written by EncodeStates.
	TagStates = "states"
	// TagBoot is set by the Membership itself: a value unique to each start
	// of a node. A peer whose boot tag changes has restarted, and is
	// reported as NodeJoined (not NodeUpdated). Callers must not set it.
	TagBoot = "boot"
)

// Values of TagRaftRole.
const (
	RaftRoleVoter    = "voter"
	RaftRoleNonvoter = "nonvoter"
	RaftRoleNone     = "none"
)

// MaxTagsSize is the largest encoded size of a node's tags that serf
// accepts (memberlist's node metadata limit), in bytes.
const MaxTagsSize = memberlist.MetaMaxSize

// TagsSize returns the size of tags as serf encodes them in the node's
// metadata: a magic byte and a msgpack map.
func TagsSize(tags map[string]string) int {
	var buf bytes.Buffer
	buf.WriteByte(0xff)
	if tags == nil {
		tags = map[string]string{}
	}
	// Encoding a map[string]string into a buffer cannot fail.
	_ = codec.NewEncoder(&buf, &codec.MsgpackHandle{}).Encode(tags)
	return buf.Len()
}

// CheckTags returns a *TagsSizeError when tags do not fit in MaxTagsSize
// bytes once encoded.
func CheckTags(tags map[string]string) error {
	if n := TagsSize(tags); n > MaxTagsSize {
		return &TagsSizeError{Size: n, Limit: MaxTagsSize}
	}
	return nil
}

// EncodeStates writes the states tag: the state names with their wire
// versions, sorted by name, as "name=version,name=version" (for example
// "counter=1,gauges=2"). A name must be non-empty and must not contain '=',
// ',' or whitespace; otherwise the error matches ErrBadStatesTag.
func EncodeStates(states map[string]uint32) (string, error) {
	var b strings.Builder
	for i, name := range slices.Sorted(maps.Keys(states)) {
		if err := checkStateName(name); err != nil {
			return "", err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(uint64(states[name]), 10))
	}
	return b.String(), nil
}

// DecodeStates reads a states tag written by EncodeStates. The empty string
// is no states. A malformed tag is an error matching ErrBadStatesTag that
// quotes the bad entry.
func DecodeStates(tag string) (map[string]uint32, error) {
	out := map[string]uint32{}
	if tag == "" {
		return out, nil
	}
	for entry := range strings.SplitSeq(tag, ",") {
		name, ver, ok := strings.Cut(entry, "=")
		if !ok {
			return nil, fmt.Errorf("%w: entry %q has no '='", ErrBadStatesTag, entry)
		}
		if err := checkStateName(name); err != nil {
			return nil, err
		}
		v, err := strconv.ParseUint(ver, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %q: version is not a uint32", ErrBadStatesTag, entry)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: state %q is listed twice", ErrBadStatesTag, name)
		}
		out[name] = uint32(v)
	}
	return out, nil
}

func checkStateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty state name", ErrBadStatesTag)
	}
	if strings.ContainsAny(name, "=, \t\r\n") {
		return fmt.Errorf("%w: state name %q contains '=', ',' or whitespace", ErrBadStatesTag, name)
	}
	return nil
}

// NodeTags is the typed form of the tags a dstate node advertises. The zero
// value advertises nothing.
type NodeTags struct {
	// Transport is the transport address (TagTransport).
	Transport string
	// Raft is the Raft address (TagRaft).
	Raft string
	// RaftRole is the Raft role (TagRaftRole).
	RaftRole string
	// Protocol is the dstate protocol version (TagProtocol); zero is not
	// advertised.
	Protocol uint32
	// States maps each registered state to its wire version (TagStates).
	States map[string]uint32
	// Extra holds any other tags, advertised as they are. Its keys must not
	// be one of the Tag* keys above.
	Extra map[string]string
}

// Tags returns the serf tags for t. It fails when a state name cannot be
// encoded, when Extra uses a reserved key, or when the tags (with room for
// TagBoot) exceed MaxTagsSize.
func (t NodeTags) Tags() (map[string]string, error) {
	out := make(map[string]string, len(t.Extra)+5)
	for k, v := range t.Extra {
		if isReservedTag(k) {
			return nil, fmt.Errorf("serfevents: NodeTags.Extra uses the reserved key %q", k)
		}
		out[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		}
	}
	set(TagTransport, t.Transport)
	set(TagRaft, t.Raft)
	set(TagRaftRole, t.RaftRole)
	if t.Protocol != 0 {
		out[TagProtocol] = strconv.FormatUint(uint64(t.Protocol), 10)
	}
	if len(t.States) > 0 {
		s, err := EncodeStates(t.States)
		if err != nil {
			return nil, err
		}
		out[TagStates] = s
	}
	if err := CheckTags(withBoot(out, bootPlaceholder)); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseNodeTags reads the tags of a member (as carried by a
// dstate.ClusterEvent or a Member). Unknown keys go to Extra; TagBoot is
// dropped. A malformed TagProtocol or TagStates is an error.
func ParseNodeTags(tags map[string]string) (NodeTags, error) {
	var t NodeTags
	for k, v := range tags {
		switch k {
		case TagTransport:
			t.Transport = v
		case TagRaft:
			t.Raft = v
		case TagRaftRole:
			t.RaftRole = v
		case TagProtocol:
			p, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return NodeTags{}, fmt.Errorf("serfevents: tag %q=%q is not a uint32", TagProtocol, v)
			}
			t.Protocol = uint32(p)
		case TagStates:
			s, err := DecodeStates(v)
			if err != nil {
				return NodeTags{}, err
			}
			t.States = s
		case TagBoot:
		default:
			if t.Extra == nil {
				t.Extra = map[string]string{}
			}
			t.Extra[k] = v
		}
	}
	return t, nil
}

func isReservedTag(k string) bool {
	switch k {
	case TagTransport, TagRaft, TagRaftRole, TagProtocol, TagStates, TagBoot:
		return true
	}
	return false
}

// bootPlaceholder has the length of a real boot ID, for size checks.
const bootPlaceholder = "0123456789abcdef"

// withBoot returns a copy of tags with TagBoot set to boot.
func withBoot(tags map[string]string, boot string) map[string]string {
	out := make(map[string]string, len(tags)+1)
	maps.Copy(out, tags)
	out[TagBoot] = boot
	return out
}
