// Package localpersist is a dstate.StatePersistence in a local bbolt file:
// the "Local" durability of a state. Every save is one bbolt transaction,
// fsynced before Save returns, holding the state's last StateObject
// (generation, storage version, timestamps and the encoded state).
//
// One [DB] (one file, opened with [Open]) serves all states of a node: it
// is a dstate.EnvelopeStore, which a host lists in node.Config.Stores
// under dstate.Local, and dstate.PersistenceFor gives one state its typed
// persistence over it (the node ID is not part of the key: a DB holds one
// node's states). Saves are fenced like the raft store's: a save whose
// generation is not newer than the stored one (and is not an identical
// retry) is rejected with ErrFenced.
//
// The data survives a process restart but not the loss of the disk; use
// pkg/raftpersist for replicated durability.
package localpersist
