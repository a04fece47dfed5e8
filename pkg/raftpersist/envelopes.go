package raftpersist

import (
	"context"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Envelopes returns the store as a dstate.EnvelopeStore (for a host's
// node.Config.Stores) that is also a dstate.EnvelopeReader: the cluster-wide
// linearizable read behind Shard.QueryDurable.
func (s *Store) Envelopes() interface {
	dstate.EnvelopeStore
	dstate.EnvelopeReader
} {
	return envelopeStore{s}
}

type envelopeStore struct{ s *Store }

func toStored(e *Envelope) dstate.StoredEnvelope {
	return dstate.StoredEnvelope{State: e.State, Node: e.Node, Generation: e.Generation, StorageVersion: e.StorageVersion,
		CreatedUnixMs: e.CreatedUnixMs, ModifiedUnixMs: e.ModifiedUnixMs, Data: e.Data}
}

// SaveEnvelope implements dstate.EnvelopeStore (see Store.SaveEnvelope).
func (es envelopeStore) SaveEnvelope(ctx context.Context, env dstate.StoredEnvelope) error {
	return es.s.SaveEnvelope(ctx, &Envelope{State: env.State, Node: env.Node, Generation: env.Generation,
		StorageVersion: env.StorageVersion, CreatedUnixMs: env.CreatedUnixMs, ModifiedUnixMs: env.ModifiedUnixMs, Data: env.Data})
}

// LoadEnvelope implements dstate.EnvelopeStore (see Store.LoadEnvelope).
func (es envelopeStore) LoadEnvelope(ctx context.Context, state string, node dstate.NodeID) (*dstate.StoredEnvelope, error) {
	e, err := es.s.LoadEnvelope(ctx, state, node)
	if err != nil || e == nil {
		return nil, err
	}
	env := toStored(e)
	return &env, nil
}

// LoadAllEnvelopes implements dstate.EnvelopeReader (see Store.LoadAll).
func (es envelopeStore) LoadAllEnvelopes(ctx context.Context, state string) ([]dstate.StoredEnvelope, error) {
	envs, err := es.s.LoadAll(ctx, state)
	if err != nil {
		return nil, err
	}
	out := make([]dstate.StoredEnvelope, 0, len(envs))
	for _, e := range envs {
		out = append(out, toStored(e))
	}
	return out, nil
}
