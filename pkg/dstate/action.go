package dstate

import (
	"fmt"
	"time"
)

// ActionKind is the kind of an [Action].
type ActionKind uint8

// The action kinds.
const (
	// ActionBroadcast: send Message to every current member but self, now.
	ActionBroadcast ActionKind = iota + 1
	// ActionSend: send Message to Target, now.
	ActionSend
	// ActionScheduleDelayed: broadcast Message to the members current at the
	// time, after Delay. Message was built when the action was returned.
	ActionScheduleDelayed
	// ActionNotify: hand Notice to the node's change-feed aggregator; the
	// next flush broadcasts it in a BatchedChangeFeed.
	ActionNotify
	// ActionNoticeRejected: the engine rejected a change notice (Notice)
	// that Target sent. Either it was about another node than Target
	// (refused: the feed of a node carries only its own notices), or
	// Notice.Source is Target and its answer to a pull showed the
	// announced generation to be ahead of its state (overruled: the pending
	// generation was cleared). Nothing is sent; hosts log it, rate limited,
	// as the sign of a faulty or hostile peer.
	ActionNoticeRejected
)

// Action is one effect an engine asks its host to perform. Hosts perform the
// actions of one call in order, after the call returns and (for a mutation
// with persistence) only after the state was saved.
type Action struct {
	Kind    ActionKind
	Target  NodeID             // ActionSend, ActionNoticeRejected
	Delay   time.Duration      // ActionScheduleDelayed
	Message WireMessage        // ActionBroadcast, ActionSend, ActionScheduleDelayed
	Notice  ChangeNotification // ActionNotify, ActionNoticeRejected
}

// String describes the action, e.g. "send(n2, RequestSnapshot(kv by n1))".
func (a Action) String() string {
	switch a.Kind {
	case ActionBroadcast:
		return fmt.Sprintf("broadcast(%s)", a.Message.String())
	case ActionSend:
		return fmt.Sprintf("send(%s, %s)", a.Target, a.Message.String())
	case ActionScheduleDelayed:
		return fmt.Sprintf("after(%s, %s)", a.Delay, a.Message.String())
	case ActionNotify:
		return fmt.Sprintf("notify(%s)", a.Notice)
	case ActionNoticeRejected:
		return fmt.Sprintf("rejected(%s, %s)", a.Target, a.Notice)
	}
	return fmt.Sprintf("action(%d)", a.Kind)
}
