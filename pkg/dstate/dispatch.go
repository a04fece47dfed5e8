package dstate

import "time"

// ActionHandler is what a host does for each kind of [Action]; [Dispatch]
// calls it. Messages arrive encoded (EncodeWire) once per action, so a
// broadcast's frame is shared by every target and must not be modified.
//
// Dispatch calls the methods on its caller's goroutine — for a host, the
// goroutine that owns the engine — in the order of the actions. They must
// not block: a send that cannot go out now is dropped or queued by the
// host, and the engine's sync recovers what is lost.
type ActionHandler interface {
	// Broadcast sends frame to every current member but this node, now.
	Broadcast(frame []byte)
	// Send sends frame to one node, now.
	Send(to NodeID, frame []byte)
	// BroadcastAfter broadcasts frame, after delay, to the members current
	// at that time. A host that stops the engine cancels it.
	BroadcastAfter(delay time.Duration, frame []byte)
	// Notify hands a change notice to the node's [ChangeFeedAggregator];
	// its next flush broadcasts it.
	Notify(notice ChangeNotification)
	// NoticeRejected reports a change notice from peer that the engine
	// rejected (see ActionNoticeRejected). Nothing is to be sent; hosts log
	// it, rate limited.
	NoticeRejected(peer NodeID, notice ChangeNotification)
}

// FrameEncoder is an optional capability of an [ActionHandler]: Dispatch
// encodes the messages it hands to the handler with EncodeFrame instead of
// [EncodeWire], e.g. to carve small frames out of shared buffers. The
// result must be exactly EncodeWire's bytes, and no longer shared with
// anything the encoder writes to later: the handler's transport may hold
// the frame for as long as it is queued.
type FrameEncoder interface {
	// EncodeFrame returns the encoding of m.
	EncodeFrame(m *WireMessage) []byte
}

// Dispatch performs the actions of one engine call, in order, through h:
// the one place where an action kind maps to what a host does. Hosts call
// it after the engine call returns and, for a mutation with persistence,
// only after the state was saved. An unknown kind is ignored.
func Dispatch(acts []Action, h ActionHandler) {
	encode := EncodeWire
	if fe, ok := h.(FrameEncoder); ok {
		encode = fe.EncodeFrame
	}
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case ActionBroadcast:
			h.Broadcast(encode(&a.Message))
		case ActionSend:
			h.Send(a.Target, encode(&a.Message))
		case ActionScheduleDelayed:
			h.BroadcastAfter(a.Delay, encode(&a.Message))
		case ActionNotify:
			h.Notify(a.Notice)
		case ActionNoticeRejected:
			h.NoticeRejected(a.Target, a.Notice)
		}
	}
}
