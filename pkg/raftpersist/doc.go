// Package raftpersist is a dstate.StatePersistence replicated through one
// hashicorp/raft group per cluster: saves are committed to a quorum before
// they are acknowledged, and a restarted (or replaced) node loads its last
// committed StateObject from any member.
//
// # Layout
//
// Each node runs one [Store] ([New] with a [Config]): a raft instance whose
// log and stable store is a bbolt file (raft-boltdb/v2, fsync on every
// write) in DataDir/raft.db, or with Config.LogStore [LogStoreWAL] a
// write-ahead log (hashicorp/raft-wal, one fsync per append) in
// DataDir/raft-wal/ (a data dir holding the other store's files is refused
// with a [LogStoreMismatchError]), whose snapshots are files in
// DataDir/snapshots, and whose transport is raft's NetworkTransport over
// this package's stream layer: one TCP listener (optionally TLS, mutual
// TLS when the tls.Config asks for client certificates) carries both raft
// RPCs and the store's own forwarding protocol; the first byte of each
// connection says which.
//
// A Store is a dstate.EnvelopeStore (and a dstate.EnvelopeReader): a host
// lists it in node.Config.Stores under dstate.Raft, and every state of Raft
// durability is persisted through it, typed by dstate.PersistenceFor with
// the state's definition (its dstate.StateCodec): the host calls Save
// before publishing a mutation and Load at start.
//
// # State machine
//
// The replicated state machine keeps, per (state name, node ID), the last
// saved dstate.StoredEnvelope: generation, storage version, created and
// modified timestamps and the encoded state. Apply is deterministic: a save is
// accepted when its generation is newer than the stored one, or when it is
// identical to the stored save (so a save retried after a lost answer is
// idempotent); otherwise it is rejected with a [FencedError] (a stale
// incarnation can never overwrite a newer one). Snapshots are the sorted
// envelopes; a node too far behind the leader's log installs one.
//
// # Saves
//
// Save on the leader applies through raft and checks both the future's
// error and the state machine's answer; on a follower it is forwarded to
// the leader (length-prefixed frames on the shared listener) and retried
// when the leader changes, until the context ends. A Save returns nil only
// for a committed save. Without a quorum it returns a *dstate.PersistError
// of kind ErrStorageUnavailable when its context ends (or after
// Config.ApplyTimeout without a deadline); when the save was sent but not
// answered, the error also matches [ErrOutcomeUnknown]: the save may still
// commit later.
//
// Concurrent saves are group-committed: a batcher collects the saves that
// are waiting while the batch before them is in flight and writes each
// batch as one log entry (one forwarded request from a follower). A save
// arriving when no batch is in flight goes out at once; full batches are
// pipelined, up to Config.MaxInflight in flight. Config.DisableGroupCommit
// turns it off.
//
// # Reads
//
// [Store.LoadEnvelope] and [Store.LoadAllEnvelopes] are linearizable: the
// leader commits a barrier and answers with its state machine's applied
// index (a read index); the reading node waits until its own state machine
// has applied that index and reads locally. Concurrent reads on a node share one round trip.
// [Store.LoadLocal] is the stale-capable local read.
//
// # Cluster operations
//
// Config.Bootstrap bootstraps a fresh cluster with a fixed server list;
// Config.BootstrapExpect bootstraps once that many servers are known
// (Config.KnownServers and [Store.ObserveServer], e.g. from serf tags).
// Bootstrapping a data dir that already holds raft state is ignored.
// [Store.AddVoter], [Store.AddNonvoter] and [Store.RemoveServer] run on the
// leader (forwarded from a follower); [Store.Stats] reports each server's
// raft statistics and how far it trails the leader. [Store.Leave] takes a
// server that stops for good out of the configuration (handing leadership
// over first) and returns once it is out; Config.ResolveServer lets
// servers that all start again on new addresses find each other by ID
// (see leave.go).
//
// # Who may connect and what a connection may do
//
// Every connection names its node in a prelude, bound to the dialer's
// certificate under mutual TLS. With Config.IsKnownNode set, only servers
// of the raft configuration and nodes the hook knows are admitted. A
// forwarded save is applied only when it saves the forwarding node's own
// envelopes (Config.ForwardedSaveAllowed can widen this), a forwarded
// membership change only when it comes from a voter; refusals answer
// [ErrForbidden]. The listener caps its connections in all and per remote
// IP (Config.MaxConns, Config.MaxConnsPerHost), bounds the handshake by
// Config.DialTimeout and closes connections idle for Config.IdleTimeout.
// [Store.Refusals] counts every refusal. Without client certificates the
// announced node ID is trusted as is. See authorize.go.
//
// # Operating notes
//
// Raft's logs go to Config.Logger through an hclog adapter
// ([NewHCLogger]), at Config.RaftLogLevel and up; the errors raft logs for
// what a graceful stop or a leadership handover causes (a connection closed
// by a stopping node, a leader stepping down for a newer term) are logged at
// Debug. Raft's metrics go to the process-global go-metrics registry;
// [EnablePrometheusMetrics] routes them, and serf's and memberlist's, to a
// Prometheus registerer under conventional names ([PrometheusSink]:
// snake_case, "_total" counters, timers in seconds, peer IDs as labels).
//
// A host that gets an error whose outcome is unknown, or a fencing error,
// must not reuse the generation it tried: the save may be stored. The
// safe reaction is to reload (Load) or start a new, larger incarnation
// (PersistError.Stored carries the stored generation when known).
package raftpersist
