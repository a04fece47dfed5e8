// Package certid binds a node ID to the TLS certificate a peer presented:
// the state transport and the Raft transport both refuse a connection whose
// verified certificate does not name the node ID the peer claims, and the
// agent refuses to start with a certificate that does not name its own.
//
// A certificate names its node with a URI subject alternative name
// dstate://node/<id> ([NodeURI]), as dstatectl tls cert issues them. A
// certificate without any dstate:// URI SAN (one made by other tooling)
// names the node of its Subject CommonName. DNS names never bind an
// identity: they serve hostname verification only, and default
// certificates all carry localhost.
package certid
