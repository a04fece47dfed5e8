// Package bench holds the scenarios of `dstatectl bench`: whole-system
// measurements of dstate against the alternatives a user would otherwise
// reach for, each baseline measured in the same run.
//
//   - [Latency]: three nodes over loopback TCP; one mutates at a fixed rate
//     and the time until the others applied each update is recorded. The
//     same updates also go through hashicorp/memberlist broadcasts and serf
//     user events, in alternating rounds.
//   - [Throughput]: the highest sustained rate of deltas delivered to each
//     peer with a bounded window (so no queue grows), and allocations per
//     delivered delta.
//   - [Durable]: saves through pkg/raftpersist against raw raft.Apply on the
//     same 3-node raft cluster, unbatched and with group commit, on each
//     Raft log store (raft-boltdb and raft-wal) side by side.
//   - [Feed]: bytes and frames on the wire per mutation with the change feed
//     against active push.
//   - [Catchup]: a node joining a cluster that holds 100,000 view entries,
//     and the time until its views are complete.
//   - [Scale]: 100 nodes × 10 states as engines over an in-memory network in
//     one process: convergence after a join and memory per view entry.
//   - [Heal]: a partition of the whole cluster heals after every node wrote
//     once; the time until every node holds every other's latest
//     generation.
//   - [Idle]: the bytes a converged cluster sends per node and second while
//     nothing is written.
//   - [FailedPeer]: queries on a node while one peer is failed, which must
//     name it and never wait for it.
//   - [Watch]: when an update becomes visible to a watcher (Shard.Watch)
//     against a poller, and what a thousand watchers cost.
//
// Every scenario returns a [Result]: parameters, figures (with the target
// they are checked against, where the project set one), notes and the
// machine. [Result.WriteTable] prints it for people and [WriteJSON] for
// scripts. Nothing here asserts a timing; BENCHMARKS.md records the figures.
//
// The scenarios measure with the real clock and real sockets, so they
// belong to this internal package and the CLI, not to the library.
package bench
