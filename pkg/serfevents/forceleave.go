package serfevents

import (
	"context"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// ForceLeave forces a failed member out of the cluster, as if it had left
// gracefully: every member (this one at once, the others as the broadcast
// reaches them) marks it left and stops trying to reconnect to it, and
// subscribers see NodeLeft. With prune the member is also erased from the
// member list instead of lingering as left until the tombstone timeout.
//
// It refuses this node itself and members that are alive (errors matching
// ErrMemberAlive: they would refute the leave; stop them or make them
// leave), and nodes that are not members (ErrUnknownMember). It waits
// until the broadcast is sent (bounded by Timing.BroadcastTimeout) or ctx
// ends.
func (m *Membership) ForceLeave(ctx context.Context, node dstate.NodeID, prune bool) error {
	if node == "" {
		return fmt.Errorf("serfevents: force-leave: %w: the node name is empty", ErrUnknownMember)
	}
	if node == m.id {
		return fmt.Errorf("serfevents: force-leave %s: %w: it is this node (use Leave)", node, ErrMemberAlive)
	}
	var (
		status MemberStatus
		found  bool
	)
	for _, mb := range m.Members() {
		if mb.ID == node {
			status, found = mb.Status, true
		}
	}
	switch {
	case !found:
		return fmt.Errorf("serfevents: force-leave %s: %w", node, ErrUnknownMember)
	case status == StatusAlive:
		return fmt.Errorf("serfevents: force-leave %s: %w: only failed members can be forced out (stop it first, or make it leave)", node, ErrMemberAlive)
	}
	if err := m.enter(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		defer m.wg.Done()
		if prune {
			done <- m.serf.RemoveFailedNodePrune(string(node))
		} else {
			done <- m.serf.RemoveFailedNode(string(node))
		}
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("serfevents: force-leave %s: %w", node, err)
		}
		m.log.Info("forced a member out of the cluster", "member", string(node), "prune", prune, "was", status.String())
		return nil
	case <-ctx.Done():
		return fmt.Errorf("serfevents: force-leave %s: %w", node, ctx.Err())
	}
}
