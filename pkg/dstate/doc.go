// Package dstate is the pure core of dstate: the types, interfaces, wire
// format and replication engine that keep a projected view of every node's
// state on every other node.
//
// # Model
//
// Each node owns one authoritative [StateObject] per registered state type.
// A projection of it, the view, is replicated to every other node, where it
// is kept as a [StateViewObject]. Queries read the views of all nodes
// locally, with a declared bound on staleness. Mutations are local; how they
// travel is the state's [SyncStrategy] and each mutation's [SyncUrgency].
//
// # Defining a state
//
// A state type is described by a stateless definition value. Every
// definition is a [StateCodec]: Name, WireVersion, StorageVersion,
// EncodeState and DecodeState (the owned value's encoding, which is all
// persistence needs). A [DistributedState] (the whole value replicates) is
// exactly that; a [DeltaDistributedState] adds ProjectView, ProjectDelta,
// ApplyDelta and the encodings of views and deltas (EncodeView, DecodeView,
// EncodeDelta, DecodeDelta). Embedding [Versions] supplies both versions
// (the storage version defaults to the wire version), so the minimal
// definitions write three methods (simple) and ten (delta); see
// Example (MinimalDefinitions). Optional capabilities are found by type
// assertion: [UrgencyDecider] (SyncUrgency per delta change; without it
// every change is [Default], the strategy's push mode),
// [StateMigrator] (MigrateState for older storage versions, used by
// [DecodeStored]), [DeltaAppender] (AppendDelta: deltas encoded into a
// buffer the engine reuses, no allocation per mutation) and
// [ChunkedViewCodec] (views streamed in chunks; see below).
//
// Most states need no definition written by hand: package pkg/codec makes
// a simple state of a plain Go value in one line (codec.Simple with the
// JSON or CBOR codec, versions and migrations included), and package
// pkg/replicated has ready-made delta states (Map, Set, Counter,
// Register) with typed handles. An owned value that is never changed in
// place (a persistent map, say) implements [Persistent], so that the
// engine checkpoints it by copy rather than by encoding it.
//
// A persistence backend stores [StoredEnvelope]s in an [EnvelopeStore];
// [PersistenceFor] types one state's persistence over it with the state's
// definition.
//
// # The engine
//
// [Engine] (and [DeltaEngine] for [DeltaDistributedState]) is a sans-IO state
// machine, one per state type per node, in the style of etcd's raft RawNode:
// it has no goroutines, reads time only through its [Clock], and never
// touches the network, files or a global logger (a test enforces this). Every
// input returns the [Action]s the host must perform:
//
//	for {
//		select {
//		case fn := <-mutations:
//			res := e.Mutate(fn, dstate.Default) // or Prepare, save, Commit/Abort
//			perform(res.Actions)
//		case msg := <-inbound:
//			perform(e.HandleWire(&msg))
//		case ev := <-membership:
//			perform(e.OnNodeJoined(ev.Node)) // OnNodeLeft, OnNodeFailed
//		case <-periodic.C:
//			perform(e.PeriodicSync())
//		}
//	}
//
// where perform is [Dispatch] with the host's [ActionHandler], the one
// mapping of actions to what a host does: ActionBroadcast goes to every
// current member but self, ActionSend to its target, ActionScheduleDelayed
// as a broadcast after its delay, ActionNotify to the node's
// [ChangeFeedAggregator], which is flushed as one BatchedChangeFeed every
// batch interval, and ActionNoticeRejected is logged (rate limited: it
// names a faulty or hostile peer).
// A host that receives several messages at once (a [BatchLender]
// transport) may hand them to [Engine.HandleDeltaRun] instead, which
// publishes a peer's view once per run of its deltas.
// A host that persists calls [Engine.Prepare], saves the returned object, then
// [Engine.Commit] (publish) or [Engine.Abort] (roll back): nothing is
// published before the save succeeded.
//
// # Time
//
// The engine, the host and the actor runtimes read time through one
// [Clock]: [SystemClock] in production, dstatetest.TestClock in tests and
// in the simulation. A runtime that schedules timers takes a [TimerClock],
// a Clock with AfterFunc; both clocks are one. A clock whose Now carries
// its wall clock may implement the optional [WallClock], as SystemClock
// does: the engine then reads it once where it needs both.
//
// # Adapter interfaces
//
// Everything a host plugs in is defined here, one file each, so an adapter
// imports this package and never the host:
//
//   - [ActorRuntime] (runtime.go) runs the actors, with the optional
//     [GroupRuntime];
//   - [ClusterEvents] (membership.go) is the membership feed, whose events
//     carry a peer's [TransportTag];
//   - [StatePersistence] (persistence.go) stores a node's own state, over
//     an untyped [EnvelopeStore] with the optional [EnvelopeReader];
//   - [Transport] (transport.go) carries frames between nodes, with the
//     optional [LinkNotifier].
//
// Each interface says which goroutine calls each method and whether the
// method may block. Optional capabilities are separate interfaces that a
// host detects with a type assertion.
//
// # Protocol
//
//   - Generations order incarnation first, then age; a mutation adds one to
//     the age; a restarted node without a usable persisted state takes a new,
//     larger incarnation.
//   - A delta is applied only when it has the view's incarnation and the next
//     age. An older one is discarded; a gap makes the receiver send a
//     RequestSnapshot, answered with a FullSnapshot.
//   - A snapshot is accepted when it is newer than the view held or there is
//     none.
//   - Change notices mark views stale (a pending generation); stale views are
//     pulled on query when the strategy says so. A node's feed carries only
//     its own notices: a notice about any other node than the feed's sender
//     is refused (counted as NoticesRefused, reported as
//     ActionNoticeRejected), so no member can mark another member's view
//     stale.
//   - Join: both sides create a stale placeholder and send their snapshot.
//     Leave: the view is dropped and the node is departed, its late messages
//     ignored, until it joins again.
//   - Streamed snapshots: a state whose definition is a [ChunkedViewCodec]
//     sends a view larger than one chunk as a stream of SnapshotChunk
//     messages that the receiver pulls a window at a time (SnapshotPull),
//     so neither end holds more than a few chunks beyond the views (see
//     stream.go). The receiver's view stays as it was until the last chunk;
//     deltas past the streamed generation are kept and applied after it. A
//     peer gets chunks unsolicited only when it joins or restarts; a
//     request is answered by a stream only once the requester has shown
//     it streams (it sent a chunk or a pull), else by a FullSnapshot, so
//     nodes of releases without streams keep working beside it.
//   - Version mismatch: KeepStale keeps the last good view; DropAndWait drops
//     it until a readable message arrives.
//   - Failure: a peer counts as failed when the membership layer reports it
//     failed, when a snapshot request to it went unanswered for a whole pull
//     timeout, or when there is no readable view of it ([Engine.FailedPeers]).
//     Until it is heard from again it is not pulled on behalf of queries and
//     hosts do not wait for it: [Engine.Query] names it in
//     QueryResult.Failed, a blocking host query answers at once with its last
//     view and a *QueryError whose Failed names it (matching ErrPeerFailed
//     and ErrStalePeer), and [Engine.Health] counts it failing. A peer back
//     from a membership failure has its view marked stale until a snapshot or
//     the next delta says where it stands.
//
// # Decisions where the reference engine is quirky
//
// The Rust crate this protocol comes from has behaviours that were decided
// here deliberately rather than copied:
//
//   - Wire versions: snapshots and deltas alike go through the state's
//     decoder, which decides which versions it reads (the reference requires
//     an exact wire version for deltas only). An unknown version applies the
//     mismatch policy; a delta in an unknown version does not trigger a
//     snapshot request, since the snapshot would be in the same version.
//   - Timestamps: views carry the owner's modified time from the wire (the
//     reference stamps the receiver's clock); the wire's created time is
//     not kept in a view, as the incarnation is the owner's start time.
//     SyncedAt is always the receiver's monotonic clock, since freshness
//     is local; a view keeps it as nanoseconds since its engine's epoch and
//     [Views.SyncedAt] returns it as a time. A view has no SyncedAt, Source
//     or CreatedUnixMs field: 40 bytes less per view held, and its node is
//     the key it is found under.
//   - Pending generations only rise: a notice never lowers a higher pending
//     generation (the reference overwrites it). The owner's answer to a pull
//     is the exception: a snapshot that arrives while a request sent after
//     the notice is in flight says where the owner stands, and a pending
//     generation above it is cleared (counted as NoticesOverruled, reported
//     as ActionNoticeRejected), so a notice announcing a generation the
//     owner does not have cannot keep its view stale forever. On a network
//     that reorders, an older snapshot the owner sent before the notice may
//     be taken for that answer; the requested answer still follows and
//     brings the view up to date.
//   - Snapshots from peers that never joined are accepted: membership may
//     lag data, and the departed set still keeps out nodes that left.
//   - A snapshot of the generation already held renews the view's freshness
//     (counted as SnapshotsConfirmed), so periodic sync keeps unchanged views
//     fresh; the reference discards it and lets the view go stale.
//   - Delayed sends carry the state serialized at mutation time, as in the
//     reference; if newer data arrives first the delayed message is discarded
//     as stale, which is harmless.
//   - A simple Mutate on a delta state sends a full snapshot, as in the
//     reference: without a change value there is no delta to project.
//   - The Immediate metric counts Immediate mutations only (the reference
//     counts every delta broadcast), joining self does nothing, messages
//     looped back from the local node are ignored, and the own view carries
//     the engine's wire version.
//   - Snapshot requests to a peer are not repeated while one is outstanding
//     within the pull timeout, so a burst of gapped deltas costs one request:
//     only a snapshot answers a request, a delta applied meanwhile does not.
//   - A snapshot announcing a newer incarnation of a peer (it restarted) is
//     answered with the own snapshot: what the peer's previous incarnation
//     held is gone, and the join-time snapshot may have been lost with its
//     old connections. The reference relies on the join exchange alone.
//
// # Callbacks that panic
//
// The engine and the host recover every panic of user code on the state's
// actor: the mutation function, ProjectView, ProjectDelta, SyncUrgency, the
// encoders and decoders, migrations and the persistence. A recovered panic
// is a *[CallbackPanicError] (errors.Is [ErrCallbackPanic]; errors.As gives
// the callback's name, the panic value and the stack, and a runtime.Error
// value unwraps too).
//
//   - A mutation that panics, or whose projection, urgency or encoding
//     panics, is undone before anything is saved or sent: the owned value
//     is exactly what it was ([Engine.TryPrepare] restores it from a
//     checkpoint taken before the function ran), the generation does not
//     advance, nothing is published or persisted, the caller of the host's
//     Mutate gets a *MutationError of kind ErrCallbackPanic, and the next
//     mutation has the next age. The checkpoint is a copy of the value when
//     it holds no maps, slices, pointers or interfaces (free), else an
//     encoding of it: the own snapshot of a simple state or the host's last
//     save when there is one, else one EncodeState before each mutation.
//   - A peer's delta or snapshot whose decoding panics counts as malformed
//     (SyncFailures, the peer's LastError): the last good view stays and a
//     snapshot is requested. An ApplyDelta that writes into the view it is
//     given (allowed only when views are not shared) cannot be undone.
//   - A panicking encoder of the own snapshot answers nothing (counted as
//     EncodeFailures); a panic while loading a persisted state fails the
//     registration.
//
// # Wire format
//
// [AppendWire] and [DecodeWireLimits] encode a [WireMessage] compactly: a
// protocol version byte, a kind byte, then varint integers and
// length-prefixed strings and payloads (see codec.go). Decoding never panics
// and never allocates past [DecodeLimits]; golden vectors in testdata pin
// the format.
package dstate
