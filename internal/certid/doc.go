// Package certid binds a node ID to the TLS certificate a peer presented:
// the state transport and the Raft transport both refuse a connection whose
// verified certificate does not name the node ID the peer claims.
package certid
