package node_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node/nodetest"
)

// TestLoopbackConformance runs the exported loopback suite on gosched, the
// runtime every other test of this package uses.
func TestLoopbackConformance(t *testing.T) {
	nodetest.LoopbackConformance(t, func(t *testing.T) dstate.ActorRuntime {
		cfg := gosched.DefaultConfig()
		cfg.Logger = quietLogger()
		rt, err := gosched.New(cfg)
		require.NoError(t, err)
		t.Cleanup(rt.Close)
		return rt
	})
}
