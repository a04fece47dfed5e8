package node_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
)

// TestRegisterLoadErrorNamesTheCause: a registration whose load fails says
// it is a registration, names the state and keeps the store's cause, which
// errors.Is finds; it is not reported as a mutation.
func TestRegisterLoadErrorNamesTheCause(t *testing.T) {
	c := newTestCluster(t)
	n := c.Start("n0")
	_, err := node.Register(ctx, n, dstatetest.GaugesState{}, node.StateOptions[dstatetest.Gauges]{Persistence: dstatetest.FailingPersistence[dstatetest.Gauges]{}})
	require.ErrorIs(t, err, dstate.ErrPersistenceFailed)
	require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
	require.ErrorIs(t, err, dstatetest.ErrInjected)
	require.ErrorContains(t, err, `register state "gauges"`)
	require.NotContains(t, err.Error(), "mutate")
	var me *dstate.MutationError
	require.NotErrorAs(t, err, &me, "a registration is not a mutation")
}
