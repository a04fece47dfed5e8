package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// TestDeleteOfAMissingKeyChangesNothing: deleting a key the node does not
// hold answers unchanged and keeps the generation (no Raft entry for
// durable-kv); deleting a key it holds removes it with a new generation.
func TestDeleteOfAMissingKeyChangesNothing(t *testing.T) {
	a := startAgent(t, testConfig(t, "n1"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, a.WaitReady(ctx))
	for _, state := range []string{agent.KVState, agent.DurableKVState} {
		put, err := a.WriteKV(ctx, state, agent.KVChange{Key: "k", Value: "v"})
		require.NoError(t, err, state)
		res, err := a.WriteKV(ctx, state, agent.KVChange{Key: "absent", Delete: true})
		require.NoError(t, err, state)
		require.True(t, res.Unchanged, "%s: a delete of a missing key is unchanged", state)
		require.Equal(t, put.Generation, res.Generation, "%s: no new generation", state)
		res, err = a.WriteKV(ctx, state, agent.KVChange{Key: "k", Delete: true})
		require.NoError(t, err, state)
		require.False(t, res.Unchanged, state)
		require.NotEqual(t, put.Generation, res.Generation, "%s: a real delete is a new generation", state)
		v, err := a.GetKV(state, "", "k")
		require.NoError(t, err)
		require.False(t, v.Found, "%s: the key is gone", state)
	}
}
