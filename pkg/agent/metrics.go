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
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &nodeCollector{a: a},
		a.api.requestMetrics())
}

// gatherer is what /metrics serves: the agent's own and the libraries'.
func (a *Agent) gatherer() prometheus.Gatherer {
	return prometheus.Gatherers{a.registry, libraryRegistry}
}

var (
	descSync = prometheus.NewDesc("dstate_sync_total", "Replication engine counters per state (see dstate.SyncMetrics).",
		[]string{"state", "counter"}, nil)
	descViews   = prometheus.NewDesc("dstate_views", "Views held per state (the node's own included).", []string{"state"}, nil)
	descFrames  = prometheus.NewDesc("dstate_node_frames_total", "Inbound frames by outcome at the host.", []string{"outcome"}, nil)
	descMembers = prometheus.NewDesc("dstate_members", "Known cluster members other than this node.", nil, nil)
	descRuns    = prometheus.NewDesc("dstate_node_delta_runs_total",
		"Runs of deltas from one peer to one state that arrived together and were applied at once, publishing one view.", nil, nil)
	descInRuns = prometheus.NewDesc("dstate_node_deltas_in_runs_total", "Deltas applied as part of a run (see dstate_node_delta_runs_total).", nil, nil)
	descLimits = prometheus.NewDesc("dstate_limit_exceeded_total",
		"Inputs refused for being over a configured limit, by limit (the agent config's max_*/peer_queue_frames names).", []string{"limit"}, nil)
	descQueue    = prometheus.NewDesc("dstate_transport_queue_frames", "Frames queued for a peer (at most peer_queue_frames).", []string{"peer"}, nil)
	descQueueCap = prometheus.NewDesc("dstate_transport_queue_capacity", "The per-peer queue bound, peer_queue_frames.", nil, nil)
	descTestLoad = prometheus.NewDesc("dstate_test_load_total",
		"Test load generator: writes done, refused by the state's actor, and ticks that fell behind.", []string{"outcome"}, nil)
)

// The transport's counters, one family per quantity.
var transportCounters = []struct {
	desc  *prometheus.Desc
	value func(transport.Stats) uint64
}{
	{transportDesc("sent_frames_total", "State transport frames sent."), func(s transport.Stats) uint64 { return s.FramesOut }},
	{transportDesc("received_frames_total", "State transport frames received."), func(s transport.Stats) uint64 { return s.FramesIn }},
	{transportDesc("sent_bytes_total", "State transport bytes sent."), func(s transport.Stats) uint64 { return s.BytesOut }},
	{transportDesc("received_bytes_total", "State transport bytes received."), func(s transport.Stats) uint64 { return s.BytesIn }},
	{transportDesc("sent_keepalives_total", "Keepalive frames sent on idle connections."), func(s transport.Stats) uint64 { return s.KeepalivesOut }},
	{transportDesc("received_keepalives_total", "Keepalive frames received."), func(s transport.Stats) uint64 { return s.KeepalivesIn }},
	{transportDesc("queue_dropped_frames_total", "Frames dropped because a peer's queue was full (peer_queue_frames)."), func(s transport.Stats) uint64 { return s.QueueDrops }},
	{transportDesc("lost_frames_total", "Frames accepted for sending that were never written: lost with a broken connection, dropped with a peer that left, or queued at close."), func(s transport.Stats) uint64 { return s.FramesLost }},
	{transportDesc("oversized_frames_total", "Frames refused for exceeding max_frame_bytes."), func(s transport.Stats) uint64 { return s.OversizedFrames }},
	{transportDesc("reconnects_total", "Connections made to a peer after its first one."), func(s transport.Stats) uint64 { return s.Reconnects }},
	{transportDesc("dial_failures_total", "Outbound TCP connects that failed."), func(s transport.Stats) uint64 { return s.DialFailures }},
	{transportDesc("handshake_failures_total", "Failed handshakes (TLS or transport), dialing and accepting."), func(s transport.Stats) uint64 { return s.HandshakeFailures }},
}

func transportDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("dstate_transport_"+name, help, nil, nil)
}

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
	ch <- descRuns
	ch <- descInRuns
	for _, d := range transportCounters {
		ch <- d.desc
	}
	for _, d := range []*prometheus.Desc{descViewAge, descViewLag, descRaftLeader, descRaftTerm, descRaftCommit, descRaftApplied,
		descRaftContact, descFollowerTrails, descFollowerContact} {
		ch <- d
	}
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
			"chunks_sent": m.ChunksSent, "chunks_received": m.ChunksReceived,
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
	ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, float64(st.DeltaRuns))
	ch <- prometheus.MustNewConstMetric(descInRuns, prometheus.CounterValue, float64(st.DeltasInRuns))
	ts := c.a.tr.Stats()
	for _, d := range transportCounters {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.value(ts)))
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
	c.a.collectViews(ch)
	if c.a.raft != nil {
		c.a.raft.collect(ch)
	}
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
