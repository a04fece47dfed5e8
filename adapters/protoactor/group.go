package protoactor

import "github.com/dstate-go/dstate/pkg/dstate"

// GroupMembers returns the running members of group, sorted by name; each
// is an *Actor. An unknown group has no members, and the error is always
// nil.
func (r *Runtime) GroupMembers(group string) ([]dstate.ActorRef, error) {
	return r.kit.Groups.Refs(group), nil
}

// BroadcastGroup sends msg to every member of group, in name order,
// without blocking. The members that could not take it (a full mailbox, or
// an actor stopped meanwhile) are reported together in a
// *dstate.GroupError whose Err joins their *dstate.ActorSendErrors; the
// others still get msg. An empty group is not an error.
func (r *Runtime) BroadcastGroup(group string, msg any) error {
	return r.kit.Groups.Broadcast(group, msg)
}

// JoinGroup adds actor to group; joining twice is a no-op. An actor of
// another runtime is refused with a *dstate.GroupError wrapping
// ErrForeignActor, and a stopped one with a *dstate.GroupError wrapping its
// *dstate.ActorSendError of Kind dstate.ErrActorStopped. An actor leaves
// all its groups when it stops.
func (r *Runtime) JoinGroup(group string, actor dstate.ActorRef) error {
	return r.kit.Groups.Join(group, actor)
}

// LeaveGroup removes actor from group; leaving a group it is not in, also
// after it stopped, is a no-op. An actor of another runtime is refused with
// a *dstate.GroupError wrapping ErrForeignActor.
func (r *Runtime) LeaveGroup(group string, actor dstate.ActorRef) error {
	return r.kit.Groups.Leave(group, actor)
}
