// Package tlsgen makes the certificates of a test or small cluster: one
// ECDSA P-256 certificate authority and, signed by it, one certificate per
// node that serves both ends of mutual TLS (server and client
// authentication) on the state transport and the Raft port.
//
// A node certificate names the node with the URI subject alternative name
// dstate://node/<id>, so a peer can check that the node presenting it is the
// one it claims to be (see internal/certid; DNS names never count). The node
// ID is also the Subject CommonName and the first DNS name. Further DNS names
// and IP addresses are added for hostname verification when dialing; by
// default 127.0.0.1, ::1 and localhost ([DefaultHosts]).
//
//	ca, _ := tlsgen.NewCA("dstate test CA", 0)           // 10 years
//	certPEM, keyPEM, _ := ca.Issue("n1", tlsgen.IssueOptions{}) // 1 year
//	_ = tlsgen.WriteFiles("n1.pem", certPEM, "n1-key.pem", keyPEM, false)
//
// Private keys are written with mode 0600 and certificates with 0644;
// existing files are kept unless the caller asks to overwrite them.
// Every error about a file names the file and says what was wrong with it.
//
// This is a tool for test clusters, demos and small deployments: it keeps
// the CA key in a plain file and knows nothing of revocation.
package tlsgen
