package raftpersist

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func TestPrometheusMetricsReceiveRaftMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	require.NoError(t, EnablePrometheusMetrics(reg, "dstate"))
	c := newCluster(t, 1, nil)
	ctx := ctxT(t, 10*time.Second)
	require.NoError(t, stateOf(c.node(0), "s").Save(ctx, obj(1, 1, "x"), nil))
	var names []string
	eventually(t, 5*time.Second, func() bool {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		names = names[:0]
		for _, mf := range mfs {
			names = append(names, mf.GetName())
			if strings.HasPrefix(mf.GetName(), "dstate_raft_") {
				return true
			}
		}
		return false
	}, "a dstate_raft_* metric")
	t.Logf("%d metric families, e.g. %v", len(names), names[:min(5, len(names))])
}
