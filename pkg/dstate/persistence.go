package dstate

import (
	"context"
	"errors"
	"fmt"
)

// StatePersistence stores a node's own StateObject so a restarted node comes
// back with its state and generation order.
//
// Who calls what (both methods may block up to ctx's deadline; the state's
// other work waits meanwhile):
//   - Save: the state's actor goroutine, after each mutation and before
//     publishing it, one call at a time.
//   - Load: the goroutine that registers the state, once, before its actor
//     starts; and the state's actor goroutine again when a Save was refused
//     because the store holds a newer generation (a save of unknown outcome
//     that landed), to adopt what the store holds.
//
// Never two calls at once for one state.
//
// Save must not acknowledge (return nil) before the object is durable at the
// implementation's level of durability. Implementations return a
// *PersistError.
type StatePersistence[S any] interface {
	// Save stores obj. encodedDelta is the wire encoding of the change's view
	// delta for delta states (nil otherwise), so an implementation may append
	// deltas instead of rewriting the state. The callee must not keep obj.Value
	// beyond the call unless it copies it.
	Save(ctx context.Context, obj *StateObject[S], encodedDelta []byte) error
	// Load returns the last saved object, or (nil, nil) if none was saved.
	Load(ctx context.Context) (*StateObject[S], error)
}

// StoredEnvelope is a persisted StateObject with its value encoded: what an
// untyped backend ([EnvelopeStore]) keeps per (state, node).
type StoredEnvelope struct {
	State          string
	Node           NodeID
	Generation     Generation
	StorageVersion uint32
	CreatedUnixMs  int64
	ModifiedUnixMs int64
	Data           []byte
}

// EnvelopeStore is an untyped persistence backend shared by every state of
// a node (a local file, a Raft group). [PersistenceFor] adapts it to one
// state's typed StatePersistence, so its methods are called as that one's
// are, from every state's goroutines at once: it is safe for concurrent
// use. Both methods may block up to ctx's deadline and return
// *PersistError.
type EnvelopeStore interface {
	// SaveEnvelope durably stores env, replacing what was stored for
	// (env.State, env.Node). A store may refuse an envelope whose
	// generation is not newer than the stored one (fencing).
	SaveEnvelope(ctx context.Context, env StoredEnvelope) error
	// LoadEnvelope returns the stored envelope of (state, node), or
	// (nil, nil) if there is none.
	LoadEnvelope(ctx context.Context, state string, node NodeID) (*StoredEnvelope, error)
}

// EnvelopeReader is an optional capability of an EnvelopeStore shared by
// the cluster (Raft): a linearizable read of every node's last committed
// envelope of one state. The host detects it with a type assertion.
type EnvelopeReader interface {
	// LoadAllEnvelopes returns every node's envelope of state. The host
	// calls it from the goroutine of a durable query, any number at once;
	// it may block up to ctx's deadline.
	LoadAllEnvelopes(ctx context.Context, state string) ([]StoredEnvelope, error)
}

// PersistenceFor returns the typed persistence of one state of node over
// an untyped store (a local file, a Raft group): values are encoded with
// def's EncodeState and decoded (or migrated) with [DecodeStored]. It is
// how every backend persists a state; a node does it for each registered
// state whose durability has a store (node.Config.Stores).
func PersistenceFor[S any](store EnvelopeStore, node NodeID, def StateCodec[S]) StatePersistence[S] {
	return envelopePersistence[S]{store: store, node: node, def: def}
}

type envelopePersistence[S any] struct {
	store EnvelopeStore
	node  NodeID
	def   StateCodec[S]
}

func (p envelopePersistence[S]) Save(ctx context.Context, obj *StateObject[S], _ []byte) error {
	data, err := p.def.EncodeState(obj.Value)
	if err != nil {
		return &PersistError{Kind: ErrIO, Op: "save", Err: fmt.Errorf("encode state %q: %w", p.def.Name(), err)}
	}
	return p.store.SaveEnvelope(ctx, StoredEnvelope{
		State: p.def.Name(), Node: p.node, Generation: obj.Generation, StorageVersion: obj.StorageVersion,
		CreatedUnixMs: obj.CreatedUnixMs, ModifiedUnixMs: obj.ModifiedUnixMs, Data: data,
	})
}

func (p envelopePersistence[S]) Load(ctx context.Context) (*StateObject[S], error) {
	env, err := p.store.LoadEnvelope(ctx, p.def.Name(), p.node)
	if err != nil || env == nil {
		return nil, err
	}
	v, err := DecodeStored(p.def, env.Data, env.StorageVersion)
	if err != nil {
		kind := ErrDeserializationFailed
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownVersion) {
			kind = ErrIO
		}
		return nil, &PersistError{Kind: kind, Op: "load", Err: fmt.Errorf("state %q: %w", p.def.Name(), err), Stored: env.Generation}
	}
	return &StateObject[S]{
		Generation: env.Generation, StorageVersion: p.def.StorageVersion(), Value: v,
		CreatedUnixMs: env.CreatedUnixMs, ModifiedUnixMs: env.ModifiedUnixMs,
	}, nil
}
