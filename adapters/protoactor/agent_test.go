package protoactor_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/adapters/protoactor"
	"github.com/dstate-go/dstate/pkg/agent"
)

// A whole agent on the proto.actor runtime: its state engines (kv, load
// and the Raft-durable durable-kv) run as proto.actor actors, Raft and the
// admin API work, and stopping the agent leaves the runtime to its owner.
func TestAgentOnProtoActor(t *testing.T) {
	rt, err := protoactor.New(protoactor.Options{Logger: discardLogger()})
	require.NoError(t, err)
	defer rt.Close()
	cfg := agent.LocalConfig(t.TempDir())
	a, err := agent.Start(context.Background(), cfg, agent.WithRuntime(rt))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, a.WaitReady(ctx))
	_, err = a.WriteKV(ctx, agent.DurableKVState, agent.KVChange{Key: "k", Value: "v"})
	require.NoError(t, err)
	v, err := a.GetKV(agent.DurableKVState, "", "k")
	require.NoError(t, err)
	require.Equal(t, "v", v.Value)
	require.NotZero(t, rt.Stats().MessagesProcessed, "the agent's states run on the proto.actor runtime")
	require.NoError(t, a.Stop(ctx))

	ref, err := rt.Spawn("after-stop", func(any) {})
	require.NoError(t, err, "the agent does not close the runtime it was given")
	ref.Stop()
}
