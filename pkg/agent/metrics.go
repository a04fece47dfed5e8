package agent

import (
	"cmp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/raftpersist"
	"github.com/dstate-go/dstate/pkg/transport"
)

// libraryMetrics receives what raft, serf and memberlist report through
// go-metrics. Their sink is process-wide, so one registry serves every
// agent in the process.
var (
	libraryOnce     sync.Once
	libraryRegistry = prometheus.NewRegistry()
)

func installLibraryMetrics(a *Agent) {
	libraryOnce.Do(func() {
		if err := raftpersist.EnablePrometheusMetrics(libraryRegistry, "dstate"); err != nil {
			a.log.Warn("raft and serf metrics are not exported", "err", err)
		}
	})
}

// registerMetrics registers the agent's collectors.
func (a *Agent) registerMetrics() {
	installLibraryMetrics(a)
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &nodeCollector{a: a})
}

// gatherer is what /metrics serves: the agent's own and the libraries'.
func (a *Agent) gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{a.registry, libraryRegistry}
}

var (
	descSync = prometheus.NewDesc("dstate_sync_total", "Replication engine counters per state (see dstate.SyncMetrics).",
		[]string{"state", "counter"}, nil)
	descViews     = prometheus.NewDesc("dstate_views", "Views held per state (the node's own included).", []string{"state"}, nil)
	descFrames    = prometheus.NewDesc("dstate_node_frames_total", "Inbound frames by outcome at the host.", []string{"outcome"}, nil)
	descTransport = prometheus.NewDesc("dstate_transport_total", "Transport counters.", []string{"counter"}, nil)
	descMembers   = prometheus.NewDesc("dstate_members", "Known cluster members other than this node.", nil, nil)
	descLimits    = prometheus.NewDesc("dstate_limit_exceeded_total",
		"Inputs refused for being over a configured limit, by limit (the agent config's max_*/peer_queue_frames names).", []string{"limit"}, nil)
	descQueue    = prometheus.NewDesc("dstate_transport_queue_frames", "Frames queued for a peer (at most peer_queue_frames).", []string{"peer"}, nil)
	descQueueCap = prometheus.NewDesc("dstate_transport_queue_capacity", "The per-peer queue bound, peer_queue_frames.", nil, nil)
	descTestLoad = prometheus.NewDesc("dstate_test_load_total",
		"Test load generator: writes done, refused by the state's actor, and ticks that fell behind.", []string{"outcome"}, nil)
)

// The transport's gauges of what remote peers hold.
var (
	descInbound    = prometheus.NewDesc("dstate_transport_inbound_connections", "Open inbound state transport connections.", nil, nil)
	descReassembly = prometheus.NewDesc("dstate_transport_reassembly_bytes",
		"Memory held by partially received transport messages (at most max_reassembly_bytes).", nil, nil)
)

// nodeCollector reads the host's and transport's counters at scrape time.
type nodeCollector struct{ a *Agent }

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSync
	ch <- descViews
	ch <- descFrames
	ch <- descTransport
	ch <- descMembers
	ch <- descLimits
	ch <- descQueue
	ch <- descQueueCap
	ch <- descInbound
	ch <- descReassembly
	ch <- descTestLoad
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.a.node
	if n == nil {
		return
	}
	for state, m := range n.Metrics() {
		for name, v := range map[string]uint64{
			"mutations": m.TotalMutations, "deltas_sent": m.DeltasSent, "deltas_received": m.DeltasReceived,
			"snapshots_sent": m.SnapshotsSent, "snapshots_received": m.SnapshotsReceived, "snapshots_confirmed": m.SnapshotsConfirmed,
			"deltas_suppressed": m.DeltasSuppressed, "immediate": m.Immediate, "delayed": m.Delayed,
			"notices_sent": m.NoticesSent, "notices_received": m.NoticesReceived, "snapshot_requests_sent": m.SnapshotRequestsSent,
			"notices_refused": m.NoticesRefused, "notices_overruled": m.NoticesOverruled,
			"sync_failures": m.SyncFailures, "age_gaps": m.AgeGaps, "stale_discarded": m.StaleDiscarded,
			"departed_ignored": m.DepartedIgnored, "encode_failures": m.EncodeFailures,
		} {
			ch <- prometheus.MustNewConstMetric(descSync, prometheus.CounterValue, float64(v), state, name)
		}
	}
	for _, s := range c.a.States() {
		ch <- prometheus.MustNewConstMetric(descViews, prometheus.GaugeValue, float64(s.Views), s.Name)
	}
	st := n.Stats()
	for name, v := range map[string]uint64{
		"received": st.FramesIn, "decode_error": st.DecodeErrors, "unknown_state": st.UnknownState,
		"source_mismatch": st.SourceMismatch, "notice_source_mismatch": st.NoticeSourceMismatch,
		"mailbox_drop": st.MailboxDrops, "send_error": st.SendErrors,
	} {
		ch <- prometheus.MustNewConstMetric(descFrames, prometheus.CounterValue, float64(v), name)
	}
	ts := c.a.tr.Stats()
	for name, v := range map[string]uint64{
		"frames_out": ts.FramesOut, "frames_in": ts.FramesIn, "bytes_out": ts.BytesOut, "bytes_in": ts.BytesIn,
		"queue_drops": ts.QueueDrops, "frames_lost": ts.FramesLost, "reconnects": ts.Reconnects,
		"dial_failures": ts.DialFailures, "handshake_failures": ts.HandshakeFailures, "oversized_frames": ts.OversizedFrames,
		"keepalives_out": ts.KeepalivesOut, "keepalives_in": ts.KeepalivesIn,
	} {
		ch <- prometheus.MustNewConstMetric(descTransport, prometheus.CounterValue, float64(v), name)
	}
	ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(len(n.Members())))
	ch <- prometheus.MustNewConstMetric(descInbound, prometheus.GaugeValue, float64(ts.InboundConns))
	ch <- prometheus.MustNewConstMetric(descReassembly, prometheus.GaugeValue, float64(ts.ReassemblyBytes))
	for name, v := range c.a.limitCounts() {
		ch <- prometheus.MustNewConstMetric(descLimits, prometheus.CounterValue, float64(v), name)
	}
	for peer, ps := range c.a.tr.PeerStats() {
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(ps.QueueLen), string(peer))
	}
	ch <- prometheus.MustNewConstMetric(descQueueCap, prometheus.GaugeValue, float64(c.a.queueCapacity()))
	if c.a.hooks.LoadRate > 0 {
		ls := &c.a.builtin.loadStats
		for name, v := range map[string]uint64{"written": ls.written.Load(), "refused": ls.refused.Load(), "behind": ls.behind.Load()} {
			ch <- prometheus.MustNewConstMetric(descTestLoad, prometheus.CounterValue, float64(v), name)
		}
	}
}

// limitCounts returns the inputs refused per limit, under the config's
// names for the limits: the host's decode limits, the transport's frame,
// message and queue bounds, and the admin API's body bound, connection caps
// and read timeout.
func (a *Agent) limitCounts() map[string]uint64 {
	out := map[string]uint64{}
	names := map[string]string{
		dstate.LimitSnapshotBytes: "max_snapshot_bytes", dstate.LimitDeltaBytes: "max_delta_bytes",
		dstate.LimitNameBytes: "max_name_bytes", dstate.LimitFeedNotices: "max_feed_notifications",
		dstate.LimitFeedStates: "max_feed_states", dstate.LimitFeedPeers: "max_feed_peers",
	}
	for limit, v := range a.node.Stats().LimitExceeded {
		out[cmp.Or(names[limit], limit)] = v
	}
	ts := a.tr.Stats()
	out["max_frame_bytes"] = ts.OversizedFrames
	out["peer_queue_frames"] = ts.QueueDrops
	out["max_request_bytes"] = a.api.oversizedRequests.Load()
	out["max_reassembly_bytes"] = ts.BudgetRefusals
	out["transport_max_conns"] = ts.ConnsRefused
	out["transport_max_conns_per_host"] = ts.HostConnsRefused
	out["transport_idle_timeout"] = ts.IdleTimeouts
	out["transport_read_timeout"] = ts.ReadTimeouts
	out["transport_write_timeout"] = ts.WriteTimeouts
	if l := a.api.conns; l != nil {
		out["http_max_conns"] = l.refusedTotal.Load()
		out["http_max_conns_per_host"] = l.refusedHost.Load()
		out["http_read_timeout"] = l.readTimeouts.Load()
	}
	return out
}

// queueCapacity is the per-peer frame queue bound in effect.
func (a *Agent) queueCapacity() int {
	return cmp.Or(a.cfg.PeerQueueFrames, transport.DefaultQueueSize)
}
