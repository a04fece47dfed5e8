package gosched

import "github.com/dstate-go/dstate/pkg/dstate"

// The processing groups are an actorkit.Groups; they make the Runtime a
// dstate.GroupRuntime.

// JoinGroup adds actor to group; joining twice is a no-op. It fails with a
// *dstate.GroupError wrapping ErrForeignActor for an actor of another
// runtime, or wrapping a *dstate.ActorSendError of Kind
// dstate.ErrActorStopped for a stopped actor. A stopped actor leaves all its
// groups.
func (r *Runtime) JoinGroup(group string, actor dstate.ActorRef) error {
	return r.kit.Groups.Join(group, actor)
}

// LeaveGroup removes actor from group; leaving a group it is not in
// (including after it stopped) is a no-op. It fails with a
// *dstate.GroupError wrapping ErrForeignActor for an actor of another
// runtime.
func (r *Runtime) LeaveGroup(group string, actor dstate.ActorRef) error {
	return r.kit.Groups.Leave(group, actor)
}

// BroadcastGroup sends msg to every member of group, in name order, without
// blocking. If some members could not take it, it returns a
// *dstate.GroupError whose Err joins (errors.Join) their
// *dstate.ActorSendErrors; the other members still get msg. A group with
// no members is not an error.
func (r *Runtime) BroadcastGroup(group string, msg any) error {
	return r.kit.Groups.Broadcast(group, msg)
}

// GroupMembers returns the running members of group in name order (each an
// *Actor). An unknown group has no members; the error is always nil.
func (r *Runtime) GroupMembers(group string) ([]dstate.ActorRef, error) {
	return r.kit.Groups.Refs(group), nil
}
