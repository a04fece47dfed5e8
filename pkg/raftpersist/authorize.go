package raftpersist

import (
	"fmt"
	"net"

	"github.com/hashicorp/raft"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Who may do what over the store's listener. Every connection names the
// node it comes from (the prelude's node ID; under mutual TLS the acceptor
// refuses an ID the dialer's certificate does not name). On that ID:
//
//   - A connection (raft or forwarding) is admitted only from a node in the
//     raft configuration or one Config.IsKnownNode knows (when set).
//   - A forwarded save is applied only when every envelope in it belongs to
//     the forwarding node (Config.ForwardedSaveAllowed can widen this). A
//     host persists only its own node's states, so a follower forwards
//     only saves of its own envelopes; a certificate of one node can no
//     longer store, or fence with a huge generation, another node's state.
//   - A forwarded membership change (add or remove a server) is applied only
//     when the forwarding node is a voter of the current configuration, or
//     when it removes the forwarding node itself (a server leaving). The
//     agent changes membership on the leader itself; a follower forwards a
//     change only when it lost leadership meanwhile, or when a library user
//     calls AddVoter, AddNonvoter or RemoveServer on it. A voter can win an
//     election and change the configuration anyway, so this grants no voter
//     more than it has.
//   - Reads (read index) and stats are served to every admitted node.
//
// Without TLS, or with TLS but without client certificates, nothing binds
// the announced ID to the dialer: whoever can reach the port can announce
// a voter's ID and do all of the above as that voter.

// forwarder is the node a forwarded request came from.
type forwarder struct {
	id     dstate.NodeID
	remote net.Addr
}

// admit returns why node id may not connect, or "" when it may.
func (s *Store) admit(id string) string {
	if s.cfg.IsKnownNode == nil {
		return ""
	}
	if _, ok := s.configured(raft.ServerID(id)); ok || s.cfg.IsKnownNode(dstate.NodeID(id)) {
		return ""
	}
	return fmt.Sprintf("node %q is neither in the raft configuration nor a known member", id)
}

// configured returns the suffrage of server id in the latest raft
// configuration, and whether it is in it.
func (s *Store) configured(id raft.ServerID) (raft.ServerSuffrage, bool) {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return 0, false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == id {
			return srv.Suffrage, true
		}
	}
	return 0, false
}

// authorizeSaves returns a statusForbidden response when from may not save
// one of envs, or nil when it may (or the saves are this node's own).
func (s *Store) authorizeSaves(from *forwarder, envs []*dstate.StoredEnvelope) []byte {
	if from == nil {
		return nil
	}
	for _, e := range envs {
		ok := e.Node == from.id
		if s.cfg.ForwardedSaveAllowed != nil {
			ok = s.cfg.ForwardedSaveAllowed(from.id, e)
		}
		if !ok {
			msg := fmt.Sprintf("node %q may not save state %q of node %q: a node saves only its own envelopes", from.id, e.State, e.Node)
			s.mux.refuse(from.remote, refuseForeignSave, "raftpersist: refused a forwarded save of another node's envelope",
				"node", string(from.id), "state", e.State, "owner", string(e.Node))
			return errorResponse(statusForbidden, msg)
		}
	}
	return nil
}

// authorizeMembership returns a statusForbidden response when from may not
// change the configuration, or nil when it may.
func (s *Store) authorizeMembership(from *forwarder, kind byte, server string) []byte {
	if from == nil {
		return nil
	}
	if suffrage, ok := s.configured(raft.ServerID(from.id)); ok && suffrage == raft.Voter {
		return nil
	}
	if kind == memberRemove && server == string(from.id) {
		// A server leaving: any node may take itself out, voter or not
		// (a restarted server the leader has not made a voter again yet
		// must still be able to leave).
		return nil
	}
	s.mux.refuse(from.remote, refuseMembership, "raftpersist: refused a forwarded membership change from a node that is not a voter",
		"node", string(from.id), "server", server, "kind", kind)
	return errorResponse(statusForbidden, fmt.Sprintf("node %q may not change the raft configuration: it is not a voter", from.id))
}
