package raftpersist

import (
	"context"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Codec encodes and decodes one state type for storage. Every
// dstate.DistributedState and dstate.DeltaDistributedState definition is
// a Codec; when it also implements dstate.StateMigrator, Load migrates
// states stored in an older storage version.
type Codec[S any] interface {
	StorageVersion() uint32
	EncodeState(S) ([]byte, error)
	DecodeState(data []byte, version uint32) (S, error)
}

// Persistence is the dstate.StatePersistence of one state of one node,
// stored in a Store's raft group.
type Persistence[S any] struct {
	store *Store
	state string
	node  dstate.NodeID
	codec Codec[S]
}

var _ dstate.StatePersistence[int] = (*Persistence[int])(nil)

// For returns the persistence of state on the store's own node (Config.NodeID).
func For[S any](store *Store, state string, codec Codec[S]) *Persistence[S] {
	return ForNode(store, state, store.ID(), codec)
}

// ForNode returns the persistence of state for node, e.g. to read a
// replaced node's last state.
func ForNode[S any](store *Store, state string, node dstate.NodeID, codec Codec[S]) *Persistence[S] {
	return &Persistence[S]{store: store, state: state, node: node, codec: codec}
}

// Save encodes obj and replicates it (see Store.SaveEnvelope for its
// guarantees and errors). encodedDelta is not used: the whole state is
// stored. An encoding failure is a PersistError of kind ErrIO.
func (p *Persistence[S]) Save(ctx context.Context, obj *dstate.StateObject[S], _ []byte) error {
	data, err := p.codec.EncodeState(obj.Value)
	if err != nil {
		return &dstate.PersistError{Kind: dstate.ErrIO, Op: "save", Err: fmt.Errorf("raftpersist: encode state %q: %w", p.state, err)}
	}
	return p.store.SaveEnvelope(ctx, &Envelope{
		State: p.state, Node: p.node, Generation: obj.Generation, StorageVersion: p.codec.StorageVersion(),
		CreatedUnixMs: obj.CreatedUnixMs, ModifiedUnixMs: obj.ModifiedUnixMs, Data: data,
	})
}

// Load returns the last committed object (linearizable), or (nil, nil)
// when none was saved. Data that cannot be decoded is a PersistError of
// kind ErrDeserializationFailed whose Stored is the stored generation.
func (p *Persistence[S]) Load(ctx context.Context) (*dstate.StateObject[S], error) {
	e, err := p.store.LoadEnvelope(ctx, p.state, p.node)
	if err != nil || e == nil {
		return nil, err
	}
	return p.decode(e)
}

// LoadAll returns every node's last committed object of this state
// (linearizable). A node whose data cannot be decoded fails the call.
func (p *Persistence[S]) LoadAll(ctx context.Context) (map[dstate.NodeID]*dstate.StateObject[S], error) {
	envs, err := p.store.LoadAll(ctx, p.state)
	if err != nil {
		return nil, err
	}
	out := make(map[dstate.NodeID]*dstate.StateObject[S], len(envs))
	for _, e := range envs {
		obj, err := p.decode(e)
		if err != nil {
			return nil, err
		}
		out[e.Node] = obj
	}
	return out, nil
}

func (p *Persistence[S]) decode(e *Envelope) (*dstate.StateObject[S], error) {
	v, err := dstate.DecodeStored[S](p.codec, e.Data, e.StorageVersion)
	if err != nil {
		return nil, &dstate.PersistError{
			Kind: dstate.ErrDeserializationFailed, Op: "load", Stored: e.Generation,
			Err: fmt.Errorf("raftpersist: decode state %q of node %q: %w", p.state, e.Node, err),
		}
	}
	return &dstate.StateObject[S]{
		Generation: e.Generation, StorageVersion: e.StorageVersion, Value: v,
		CreatedUnixMs: e.CreatedUnixMs, ModifiedUnixMs: e.ModifiedUnixMs,
	}, nil
}
