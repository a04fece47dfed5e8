package raftpersist

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metrics "github.com/hashicorp/go-metrics/compat"
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

// TestPrometheusNames: go-metrics keys become conventional Prometheus names.
func TestPrometheusNames(t *testing.T) {
	peer := []metrics.Label{{Name: "peer_id", Value: "n2"}}
	for _, tc := range []struct {
		kind   metricKind
		key    []string
		labels []metrics.Label
		name   string
		pairs  []string
		scale  float64
	}{
		{kindSummary, []string{"raft", "commitTime"}, nil, "dstate_raft_commit_time_seconds", nil, 1e-3},
		{kindSummary, []string{"raft", "replication", "appendEntries", "rpc"}, peer, "dstate_raft_replication_append_entries_rpc_seconds", []string{"peer", "n2"}, 1e-3},
		{kindCounter, []string{"raft", "replication", "appendEntries", "logs"}, peer, "dstate_raft_replication_append_entries_logs_total", []string{"peer", "n2"}, 1},
		{kindSummary, []string{"raft", "net", "getRPCType"}, []metrics.Label{{Name: "rpcType", Value: "x"}}, "dstate_raft_net_get_rpc_type_seconds", []string{"rpc_type", "x"}, 1e-3},
		{kindCounter, []string{"raft", "state", "leader"}, nil, "dstate_raft_state_leader_total", nil, 1},
		{kindCounter, []string{"memberlist", "udp", "sent"}, nil, "dstate_memberlist_udp_sent_bytes_total", nil, 1},
		{kindSummary, []string{"serf", "coordinate", "adjustment-ms"}, nil, "dstate_serf_coordinate_adjustment_seconds", nil, 1e-3},
		{kindSummary, []string{"serf", "msgs", "sent"}, nil, "dstate_serf_msgs_sent_bytes", nil, 1},
		{kindSummary, []string{"raft", "boltdb", "logsPerBatch"}, nil, "dstate_raft_boltdb_logs_per_batch", nil, 1},
		{kindGauge, []string{"raft", "boltdb", "txstats", "pageCount"}, nil, "dstate_raft_boltdb_txstats_page_count_value", nil, 1},
		{kindGauge, []string{"raft", "fsm", "lastRestoreDuration"}, nil, "dstate_raft_fsm_last_restore_duration_seconds", nil, 1e-3},
		{kindCounter, []string{"serf", "events", "deploy"}, nil, "dstate_serf_user_events_total", []string{"event", "deploy"}, 1},
		{kindCounter, []string{"dstate", "serfevents", "events_dropped"}, nil, "dstate_serfevents_events_dropped_total", nil, 1},
		{kindCounter, []string{"raftpersist", "refused"}, nil, "dstate_raftpersist_refused_total", nil, 1},
	} {
		t.Run(strings.Join(tc.key, "."), func(t *testing.T) {
			got, ok := translate("dstate", tc.kind, tc.key, tc.labels)
			require.True(t, ok)
			require.Equal(t, tc.name, got.name)
			require.Equal(t, tc.pairs, got.labels)
			require.Equal(t, tc.scale, got.scale)
			require.NotEmpty(t, got.help)
		})
	}
	// raft's deprecated copies with the peer inside the name are left out.
	for _, key := range [][]string{
		{"raft", "replication", "appendEntries", "rpc", "n2"},
		{"raft", "replication", "heartbeat", "n2"},
		{"raft", "replication", "installSnapshot", "n2"},
	} {
		_, ok := translate("dstate", kindSummary, key, nil)
		require.False(t, ok, key)
	}
}

// TestPrometheusSink: the sink's series, scaled, gauges expiring.
func TestPrometheusSink(t *testing.T) {
	s := NewPrometheusSink("dstate")
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(s))
	s.AddSample([]string{"raft", "commitTime"}, 250)
	s.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 3, []metrics.Label{{Name: "peer_id", Value: "n2"}})
	s.SetGauge([]string{"raft", "peers"}, 3)
	s.SetGauge([]string{"raft", "peers"}, float32(2))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]string{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch {
		case m.Summary != nil:
			got[mf.GetName()] = fmt.Sprint(m.GetSummary().GetSampleSum())
		case m.Counter != nil:
			got[mf.GetName()] = fmt.Sprint(m.GetLabel()[0].GetName(), "=", m.GetLabel()[0].GetValue(), " ", m.GetCounter().GetValue())
		case m.Gauge != nil:
			got[mf.GetName()] = fmt.Sprint(m.GetGauge().GetValue())
		}
	}
	require.Equal(t, map[string]string{
		"dstate_raft_commit_time_seconds":                   "0.25",
		"dstate_raft_replication_append_entries_logs_total": "peer=n2 3",
		"dstate_raft_peers":                                 "2",
	}, got)
	now = now.Add(gaugeExpiry + time.Second)
	mfs, err = reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		require.NotEqual(t, "dstate_raft_peers", mf.GetName(), "a gauge not set for a minute is dropped")
	}
}
