package actorkit

import (
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Groups is a runtime's registry of processing groups: named sets of its
// own actors that a message can be broadcast to. A group exists while it
// has members. The runtime calls LeaveAll when an actor stops, so groups
// hold running actors only.
type Groups[A Actor] struct {
	bind Binding[A]

	mu      sync.Mutex
	members map[string]map[A]struct{} // group name to members
	joined  map[A]map[string]struct{} // member to the groups it is in
}

// NewGroups returns an empty registry for the actors bind describes.
func NewGroups[A Actor](bind Binding[A]) *Groups[A] {
	return &Groups[A]{
		bind:    bind,
		members: make(map[string]map[A]struct{}),
		joined:  make(map[A]map[string]struct{}),
	}
}

// Join adds the actor ref to group; joining twice is a no-op. It fails
// with a *dstate.GroupError wrapping Binding.ErrForeign for a ref that is
// not the runtime's own actor, or wrapping a *dstate.ActorSendError of Kind
// dstate.ErrActorStopped for an actor that is stopping.
func (g *Groups[A]) Join(group string, ref dstate.ActorRef) error {
	a, err := g.own(group, ref)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bind.Stopping(a) {
		return &dstate.GroupError{Group: group,
			Err: &dstate.ActorSendError{Kind: dstate.ErrActorStopped, Actor: a.Name()}}
	}
	add(g.members, group, a)
	add(g.joined, a, group)
	return nil
}

// Leave removes the actor ref from group; leaving a group it is not in
// (including after it stopped) is a no-op. It fails with a
// *dstate.GroupError wrapping Binding.ErrForeign for a ref that is not the
// runtime's own actor.
func (g *Groups[A]) Leave(group string, ref dstate.ActorRef) error {
	a, err := g.own(group, ref)
	if err == nil {
		g.mu.Lock()
		remove(g.members, group, a)
		remove(g.joined, a, group)
		g.mu.Unlock()
	}
	return err
}

// own returns ref as the runtime's actor, or the error of Join and Leave
// for a foreign ref.
func (g *Groups[A]) own(group string, ref dstate.ActorRef) (A, error) {
	a, ok := g.bind.Own(ref)
	if !ok {
		return a, &dstate.GroupError{Group: group, Err: g.bind.ErrForeign}
	}
	return a, nil
}

// LeaveAll removes a from every group it is in. The runtime calls it once
// a is stopping (see Binding.Stopping).
func (g *Groups[A]) LeaveAll(a A) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for group := range g.joined[a] {
		remove(g.members, group, a)
	}
	delete(g.joined, a)
}

// Members returns the members of group sorted by name. An unknown group
// has none.
func (g *Groups[A]) Members(group string) []A {
	g.mu.Lock()
	set := g.members[group]
	out := make([]A, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	g.mu.Unlock()
	slices.SortFunc(out, func(x, y A) int { return strings.Compare(x.Name(), y.Name()) })
	return out
}

// Refs is Members as dstate.ActorRefs, the result of
// dstate.GroupRuntime.GroupMembers.
func (g *Groups[A]) Refs(group string) []dstate.ActorRef {
	members := g.Members(group)
	refs := make([]dstate.ActorRef, len(members))
	for i, a := range members {
		refs[i] = a
	}
	return refs
}

// Broadcast sends msg to every member of group, in name order, through
// its Send, which must not block. If some members could not take it, it
// returns a *dstate.GroupError whose Err joins (errors.Join) their Send
// errors; the other members still get msg. A group with no members is not
// an error.
func (g *Groups[A]) Broadcast(group string, msg any) error {
	var errs []error
	for _, a := range g.Members(group) {
		if err := a.Send(msg); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &dstate.GroupError{Group: group, Err: errors.Join(errs...)}
}

// add puts v in the set m[k], creating the set.
func add[K, V comparable](m map[K]map[V]struct{}, k K, v V) {
	set := m[k]
	if set == nil {
		set = make(map[V]struct{})
		m[k] = set
	}
	set[v] = struct{}{}
}

// remove takes v out of the set m[k], dropping the set once it is empty.
func remove[K, V comparable](m map[K]map[V]struct{}, k K, v V) {
	if set, ok := m[k]; ok {
		delete(set, v)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}
