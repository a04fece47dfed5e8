package dstate

import (
	"fmt"
	"time"
)

// NodeID identifies a node in the cluster. It is the serf member name in a
// running cluster and any non-empty string in tests.
type NodeID string

// String returns the ID itself.
func (id NodeID) String() string { return string(id) }

// Generation is the logical version of one node's state. Generations are
// ordered by Incarnation first and Age second, so any generation of a newer
// incarnation is greater than every generation of an older one.
//
// Incarnation identifies one lifetime of the owning node (wall-clock
// milliseconds at start, strictly larger than any persisted incarnation);
// Age counts the mutations within that lifetime.
type Generation struct {
	Incarnation uint64
	Age         uint64
}

// Compare returns -1, 0 or +1 as g is less than, equal to or greater than o.
func (g Generation) Compare(o Generation) int {
	switch {
	case g.Incarnation < o.Incarnation:
		return -1
	case g.Incarnation > o.Incarnation:
		return 1
	case g.Age < o.Age:
		return -1
	case g.Age > o.Age:
		return 1
	}
	return 0
}

// Less reports whether g orders before o.
func (g Generation) Less(o Generation) bool { return g.Compare(o) < 0 }

// IsZero reports whether g is the zero generation, the placeholder of a peer
// that has joined but whose state has not arrived yet.
func (g Generation) IsZero() bool { return g == Generation{} }

// String formats g as "v{incarnation}:{age}".
func (g Generation) String() string { return fmt.Sprintf("v%d:%d", g.Incarnation, g.Age) }

// UrgencyKind is the kind of a [SyncUrgency].
type UrgencyKind uint8

// The urgency kinds.
const (
	// UrgencyDefault defers to the state's PushMode.
	UrgencyDefault UrgencyKind = iota
	// UrgencyImmediate broadcasts now, whatever the push mode.
	UrgencyImmediate
	// UrgencyDelayed broadcasts after a delay.
	UrgencyDelayed
	// UrgencySuppress sends nothing for this mutation; a later gap, periodic
	// sync or pull carries the change.
	UrgencySuppress
)

// SyncUrgency says how urgently one mutation must reach the other nodes. The
// zero value is [Default].
type SyncUrgency struct {
	Kind  UrgencyKind
	Delay time.Duration // only for UrgencyDelayed
}

// Urgency values.
var (
	// Default defers to the push mode of the state's SyncStrategy.
	Default = SyncUrgency{Kind: UrgencyDefault}
	// Immediate broadcasts the change now.
	Immediate = SyncUrgency{Kind: UrgencyImmediate}
	// Suppress sends nothing for this change.
	Suppress = SyncUrgency{Kind: UrgencySuppress}
)

// Delayed returns an urgency that broadcasts the change after d.
func Delayed(d time.Duration) SyncUrgency { return SyncUrgency{Kind: UrgencyDelayed, Delay: d} }

// String describes u ("default", "immediate", "delayed(1s)", "suppress").
func (u SyncUrgency) String() string {
	switch u.Kind {
	case UrgencyImmediate:
		return "immediate"
	case UrgencyDelayed:
		return fmt.Sprintf("delayed(%s)", u.Delay)
	case UrgencySuppress:
		return "suppress"
	default:
		return "default"
	}
}

// PushMode says how a state pushes its changes when the urgency is Default.
// The zero value is ActivePush.
type PushMode uint8

// The push modes.
const (
	// ActivePush broadcasts every change (a delta when the state supports
	// it). It is the zero PushMode, so a zero SyncStrategy pushes actively.
	ActivePush PushMode = iota
	// ActiveFeedLazyPull broadcasts batched change notices; receivers mark
	// the view stale and pull the state when a query needs it.
	ActiveFeedLazyPull
	// PushNone pushes nothing on change; periodic sync or pulls carry changes.
	PushNone
)

// String names the push mode.
func (m PushMode) String() string {
	switch m {
	case ActivePush:
		return "active-push"
	case ActiveFeedLazyPull:
		return "feed-lazy-pull"
	default:
		return "none"
	}
}
