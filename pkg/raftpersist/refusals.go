package raftpersist

import (
	"net"
	"sync/atomic"

	metrics "github.com/hashicorp/go-metrics/compat"
)

// Refusals counts what a store's listener and forwarding server refused or
// closed since the store started, by reason. Each refusal is also counted in
// the go-metrics counter "raftpersist.refused" (with [EnablePrometheusMetrics]:
// dstate_raftpersist_refused_total) labelled with the node and the reason named in
// each field's comment.
type Refusals struct {
	// MaxConns: connections closed at accept because the listener held
	// Config.MaxConns connections (reason "max_conns").
	MaxConns uint64
	// MaxConnsPerHost: connections closed at accept because their remote IP
	// held Config.MaxConnsPerHost connections (reason "max_conns_per_host").
	MaxConnsPerHost uint64
	// Handshake: connections whose TLS handshake or prelude failed, or
	// whose certificate does not name the announced node ID (reason
	// "handshake").
	Handshake uint64
	// UnknownNode: connections from a node neither in the raft
	// configuration nor known to Config.IsKnownNode (reason "unknown_node").
	UnknownNode uint64
	// UnknownProtocol: connections that named no known protocol (reason
	// "unknown_protocol").
	UnknownProtocol uint64
	// Idle: connections closed after Config.IdleTimeout without traffic
	// (reason "idle").
	Idle uint64
	// ForeignSave: forwarded saves of an envelope the forwarding node may
	// not save (reason "foreign_save").
	ForeignSave uint64
	// Membership: forwarded membership changes from a node that is not a
	// voter (reason "membership").
	Membership uint64
}

// refusal reasons, the metric's label values.
const (
	refuseMaxConns        = "max_conns"
	refuseMaxConnsPerHost = "max_conns_per_host"
	refuseHandshake       = "handshake"
	refuseUnknownNode     = "unknown_node"
	refuseUnknownProtocol = "unknown_protocol"
	refuseIdle            = "idle"
	refuseForeignSave     = "foreign_save"
	refuseMembership      = "membership"
)

// refusalCounters is the live form of Refusals.
type refusalCounters struct {
	node string
	n    map[string]*atomic.Uint64
}

func newRefusalCounters(node string) *refusalCounters {
	c := &refusalCounters{node: node, n: map[string]*atomic.Uint64{}}
	for _, r := range []string{refuseMaxConns, refuseMaxConnsPerHost, refuseHandshake, refuseUnknownNode,
		refuseUnknownProtocol, refuseIdle, refuseForeignSave, refuseMembership} {
		c.n[r] = &atomic.Uint64{}
	}
	return c
}

// add counts one refusal for reason.
func (c *refusalCounters) add(reason string) {
	c.n[reason].Add(1)
	metrics.IncrCounterWithLabels([]string{"raftpersist", "refused"}, 1, []metrics.Label{
		{Name: "node", Value: c.node}, {Name: "reason", Value: reason},
	})
}

func (c *refusalCounters) snapshot() Refusals {
	g := func(r string) uint64 { return c.n[r].Load() }
	return Refusals{
		MaxConns: g(refuseMaxConns), MaxConnsPerHost: g(refuseMaxConnsPerHost), Handshake: g(refuseHandshake),
		UnknownNode: g(refuseUnknownNode), UnknownProtocol: g(refuseUnknownProtocol), Idle: g(refuseIdle),
		ForeignSave: g(refuseForeignSave), Membership: g(refuseMembership),
	}
}

// Refusals returns what this store's listener and forwarding server have
// refused so far.
func (s *Store) Refusals() Refusals { return s.refused.snapshot() }

// hostOf returns the IP of a remote address ("" when it has none).
func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
