package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/raftpersist"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// Operator endpoints that remove a dead node from the cluster:
//
//	POST /v1/force-leave        ForceLeaveRequest → ForceLeaveResult
//	POST /v1/raft/remove-peer   RemovePeerRequest → RemovePeerResult
//
// Both are state-changing calls: they need Content-Type application/json,
// the admin token when the agent has one, and pass the same cross-site
// checks as every other such call (see http_guard.go).

// ForceLeaveRequest forces a failed gossip member out of the cluster.
type ForceLeaveRequest struct {
	Node string `json:"node"`
	// Prune also erases the member from the member list (it is otherwise
	// listed as left until the tombstone timeout).
	Prune bool `json:"prune,omitempty"`
}

// ForceLeaveResult says which member was forced out and what it was.
type ForceLeaveResult struct {
	Node  string `json:"node"`
	Was   string `json:"was"` // its status before: failed, leaving or left
	Prune bool   `json:"prune"`
}

// RemovePeerRequest removes a server from the Raft configuration by node
// ID.
type RemovePeerRequest struct {
	ID string `json:"id"`
}

// RemovePeerResult names the removed server and the voters left.
type RemovePeerResult struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Voters is the number of voters in the configuration afterwards.
	Voters int `json:"voters"`
}

// conflict is a request that the cluster's state forbids (409).
type conflict struct{ error }

// ForceLeave forces node, a gossip member that failed, out of the cluster
// (serf's force-leave): every member marks it left, stops reconnecting to
// it, and the Raft leader removes it from the Raft configuration as it
// does for a server that left. With prune it is also erased from the
// member list. An alive member, this node itself and unknown names are
// refused.
func (a *Agent) ForceLeave(ctx context.Context, node string, prune bool) (ForceLeaveResult, error) {
	node = strings.TrimSpace(node)
	if node == "" {
		return ForceLeaveResult{}, badRequest{errors.New("node is empty: name the failed member to force out")}
	}
	was := ""
	for _, m := range a.Members() {
		if m.Name == node {
			was = m.Status
		}
	}
	err := a.gossip.ForceLeave(ctx, dstate.NodeID(node), prune)
	switch {
	case errors.Is(err, serfevents.ErrUnknownMember):
		return ForceLeaveResult{}, fmt.Errorf("%w: force-leave: %q is not a member (see dstatectl members)", errNotFound, node)
	case errors.Is(err, serfevents.ErrMemberAlive):
		return ForceLeaveResult{}, conflict{fmt.Errorf("force-leave %s: the member is %s: only a failed member can be forced out (stop it, or run dstatectl leave on it)", node, was)}
	case err != nil:
		return ForceLeaveResult{}, fmt.Errorf("force-leave %s: %w", node, err)
	}
	a.log.Info("forced a member out through the admin API", "member", node, "was", was, "prune", prune)
	return ForceLeaveResult{Node: node, Was: was, Prune: prune}, nil
}

// RemovePeer removes server id from the Raft configuration (through the
// leader). It refuses to remove the last voter, and ids that are not in
// the configuration. A server that is still an alive gossip member is
// added back by the leader: stop it (and force-leave it) first.
func (a *Agent) RemovePeer(ctx context.Context, id string) (RemovePeerResult, error) {
	id = strings.TrimSpace(id)
	if a.raft == nil {
		return RemovePeerResult{}, fmt.Errorf("%w: raft remove-peer needs a server agent", errNotEnabled)
	}
	if id == "" {
		return RemovePeerResult{}, badRequest{errors.New("id is empty: name the node ID of the server to remove")}
	}
	servers, err := a.raft.store.Servers()
	if err != nil {
		return RemovePeerResult{}, err
	}
	var (
		target raftpersist.Server
		found  bool
		voters int
	)
	for _, s := range servers {
		if !s.Nonvoter {
			voters++
		}
		if string(s.ID) == id {
			target, found = s, true
		}
	}
	switch {
	case !found:
		return RemovePeerResult{}, fmt.Errorf("%w: raft remove-peer: %q is not in the Raft configuration (see dstatectl raft peers)", errNotFound, id)
	case !target.Nonvoter && voters <= 1:
		return RemovePeerResult{}, conflict{fmt.Errorf("raft remove-peer %s: it is the last voter; the Raft group would have none left", id)}
	}
	if err := a.raft.store.RemoveServer(ctx, target.ID); err != nil {
		if errors.Is(err, raftpersist.ErrNoLeader) {
			return RemovePeerResult{}, fmt.Errorf("%w: raft remove-peer %s: %w", errNotReady, id, err)
		}
		return RemovePeerResult{}, fmt.Errorf("raft remove-peer %s: %w", id, err)
	}
	if !target.Nonvoter {
		voters--
	}
	a.log.Info("removed a raft server through the admin API", "server", id, "addr", target.Address, "voters", voters)
	return RemovePeerResult{ID: id, Address: target.Address, Voters: voters}, nil
}

func (s *apiServer) postForceLeave(w http.ResponseWriter, r *http.Request) {
	var req ForceLeaveRequest
	if err := s.decodeBody(w, r, "force-leave", &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	res, err := s.b.ForceLeave(r.Context(), req.Node, req.Prune)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *apiServer) postRemovePeer(w http.ResponseWriter, r *http.Request) {
	var req RemovePeerRequest
	if err := s.decodeBody(w, r, "raft remove-peer", &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	res, err := s.b.RemovePeer(r.Context(), req.ID)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
