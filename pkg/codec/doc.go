// Package codec gives a state whose value is a plain Go type its encoding
// in one line: [JSON] (encoding/json) and [CBOR] (RFC 8949, compact and
// deterministic) implement [Codec], and [Simple] turns a name and a codec
// into a whole [dstate.DistributedState]:
//
//	presence := codec.Simple("presence", codec.CBOR[Presence]())
//	shard, err := node.Register(ctx, n, presence, node.StateOptions[Presence]{})
//
// Versions and migrations stay possible: [SimpleState.Version] is the
// version sent and stored, and [SimpleState.Migrate] reads what an older
// version wrote (on the wire from a node not yet upgraded, or on disk).
//
// Decoders get hostile input (any peer's bytes, any file on disk): they
// never panic, allocate in proportion to their input (CBOR also caps
// nesting, array and map sizes and rejects duplicate map keys), and every
// failure wraps [dstate.ErrMalformed]; an unreadable version is
// [dstate.ErrUnknownVersion].
//
// CBOR was chosen over encoding/gob and msgpack by benchmark (see
// BENCHMARKS.md, "Codec helpers"): the smallest encoding and the fastest
// decode of the candidates, a deterministic mode (sorted map keys, so equal
// values encode equally), and decode limits built in.
package codec
