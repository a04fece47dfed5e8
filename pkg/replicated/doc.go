// Package replicated holds ready-made replicated types: each is a
// [dstate.DeltaDistributedState] definition, the persistent value it owns
// and replicates, and a typed handle over the registered
// [node.DeltaShard].
//
//   - [Map] (per-key deltas: set and delete), with [MapShard]
//   - [Set] (add and remove), with [SetShard]
//   - [Counter] (an int64 that replicates its additions), with [CounterShard]
//   - [Register] (last write wins: the owner's latest value), with [RegisterShard]
//
// Every node owns one value of a state and holds a view of every other
// node's; a handle writes the own value and reads any node's view.
//
// Projection is cheap: a [MapValue] is a persistent hash array mapped trie
// (compressed layout, hash/maphash for any comparable key), so a write
// makes a new value that shares all but one path with the old, the view is
// the value itself, and a peer applies a delta the same way. No write
// copies the map; MapValue implements [dstate.Persistent], so the engine's
// rollback checkpoint is a plain copy too. The trie was chosen over
// github.com/benbjohnson/immutable by benchmark: a third less garbage per
// write and 45 % more writes per CPU second at 100,000 keys. See
// BENCHMARKS.md ("Replicated types").
//
// A Map's view streams in chunks ([dstate.ChunkedViewCodec]): a view larger
// than a snapshot chunk reaches a joining node as runs of entries, each
// encoded with the entries codec as a map of its own, so neither end holds
// more than a few chunks of it beyond the views; the owner walks its
// persistent value while it goes on writing.
//
// Each definition has an Urgency func (how urgently one change travels;
// nil means [dstate.Default], the push mode of the state's sync strategy)
// and the sync strategy is the state's StateConfig
// (node.StateOptions.Config.SyncStrategy). Encodings are pluggable
// ([MapCodec]); the default is CBOR (package codec), and [JSONMap] is the
// JSON encoding that the agent's built-in kv states keep on the wire and
// on disk.
package replicated
