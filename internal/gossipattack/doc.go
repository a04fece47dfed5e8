// Package gossipattack builds the malformed memberlist messages an attacker
// on the network can send to a gossip port, byte for byte, for the tests
// that check a node survives them: a push/pull header announcing a
// negative node count, nodes with short protocol version vectors, and
// compressed messages that expand a thousandfold (decompression bombs).
//
// It exists for tests (pkg/serfevents and e2e); nothing in the library or
// the command imports it.
package gossipattack
