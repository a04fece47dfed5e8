package node

import (
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// shardActions is a Shard seen as the dstate.ActionHandler of its engine:
// frames go out through the node's transport, delayed broadcasts are
// timers of the shard's actor, notices go to the node's change feed. Its
// methods run on the actor.
type shardActions[S, V any] Shard[S, V]

// maxShardTimers bounds the delayed broadcasts a shard remembers to cancel
// when it stops.
const maxShardTimers = 64

func (h *shardActions[S, V]) Broadcast(frame []byte)              { h.n.broadcast(frame) }
func (h *shardActions[S, V]) Send(to dstate.NodeID, frame []byte) { h.n.send(to, frame) }
func (h *shardActions[S, V]) Notify(c dstate.ChangeNotification)  { h.n.notify(c) }

func (h *shardActions[S, V]) BroadcastAfter(delay time.Duration, frame []byte) {
	n := h.n
	h.timers = append(h.timers, n.rt.SendAfter(h.ref, delay, func() { n.broadcast(frame) }))
	if len(h.timers) > maxShardTimers {
		h.timers = h.timers[len(h.timers)-maxShardTimers:]
	}
}

func (h *shardActions[S, V]) NoticeRejected(peer dstate.NodeID, c dstate.ChangeNotification) {
	(*Shard[S, V])(h).noticeRejected(peer, c)
}
