package protoactor

import (
	"errors"
	"slices"
	"strings"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Processing groups are kept by the runtime itself: proto.actor's
// broadcast router delivers without reporting which members it could not
// reach, which BroadcastGroup must do.

// JoinGroup adds actor to group; joining twice is a no-op. It fails with a
// *dstate.GroupError wrapping ErrForeignActor for an actor of another
// runtime, or wrapping a *dstate.ActorSendError of Kind
// dstate.ErrActorStopped for a stopped actor. A stopped actor leaves all its
// groups.
func (r *Runtime) JoinGroup(group string, actor dstate.ActorRef) error {
	a, ok := r.own(actor)
	if !ok {
		return &dstate.GroupError{Group: group, Err: ErrForeignActor}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.stopped.Load() {
		return &dstate.GroupError{Group: group, Err: a.errStopped}
	}
	members := r.groups[group]
	if members == nil {
		members = make(map[*Actor]struct{})
		r.groups[group] = members
	}
	members[a] = struct{}{}
	if a.groups == nil {
		a.groups = make(map[string]struct{})
	}
	a.groups[group] = struct{}{}
	return nil
}

// LeaveGroup removes actor from group; leaving a group it is not in
// (including after it stopped) is a no-op. It fails with a
// *dstate.GroupError wrapping ErrForeignActor for an actor of another
// runtime.
func (r *Runtime) LeaveGroup(group string, actor dstate.ActorRef) error {
	a, ok := r.own(actor)
	if !ok {
		return &dstate.GroupError{Group: group, Err: ErrForeignActor}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if members := r.groups[group]; members != nil {
		delete(members, a)
		if len(members) == 0 {
			delete(r.groups, group)
		}
	}
	delete(a.groups, group)
	return nil
}

// BroadcastGroup sends msg to every member of group, in name order, without
// blocking. If some members could not take it, it returns a
// *dstate.GroupError whose Err joins (errors.Join) their
// *dstate.ActorSendErrors; the other members still get msg. A group with
// no members is not an error.
func (r *Runtime) BroadcastGroup(group string, msg any) error {
	var errs []error
	for _, a := range r.members(group) {
		if err := a.Send(msg); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &dstate.GroupError{Group: group, Err: errors.Join(errs...)}
}

// GroupMembers returns the running members of group in name order (each an
// *Actor). An unknown group has no members; the error is always nil.
func (r *Runtime) GroupMembers(group string) ([]dstate.ActorRef, error) {
	members := r.members(group)
	refs := make([]dstate.ActorRef, len(members))
	for i, a := range members {
		refs[i] = a
	}
	return refs, nil
}

// members returns a snapshot of group sorted by name.
func (r *Runtime) members(group string) []*Actor {
	r.mu.Lock()
	set := r.groups[group]
	out := make([]*Actor, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(x, y *Actor) int { return strings.Compare(x.name, y.name) })
	return out
}
