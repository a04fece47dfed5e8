package raftpersist

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
)

// EnablePrometheusMetrics routes the go-metrics of raft, raft-boltdb, raft-wal, serf
// and memberlist (and this module's own, such as raftpersist.refused) to a
// Prometheus registerer, under names that follow Prometheus conventions
// and start with serviceName and "_":
//
//   - every part in snake_case ("raft.commitTime" is "dstate_raft_commit_time");
//   - counters end in "_total";
//   - timers, which go-metrics reports in milliseconds, are summaries in
//     seconds ("dstate_raft_commit_time_seconds"), as are the other values
//     in milliseconds (a name part ending in "-ms", raft's lastRestoreDuration
//     and oldestLogAge gauges);
//   - sizes in bytes end in "_bytes" (memberlist's tcp/udp traffic counters,
//     serf's message sizes, raft-boltdb's log sizes);
//   - label names are snake_case, and raft's "peer_id" label is "peer";
//   - raft's deprecated copies of its replication metrics with the peer ID
//     inside the name ("raft.replication.heartbeat.n1") are left out: the
//     labelled ones carry the peer as a label; serf's per-event and
//     per-query counters ("serf.events.NAME") become
//     serviceName_serf_user_events_total{event="NAME"} and
//     serviceName_serf_user_queries_total{query="NAME"}.
//
// go-metrics' registry is process-global (raft reports through
// go-metrics/compat, which selects armon/go-metrics unless built with the
// hashicorpmetrics tag), so this is process-wide: call it once per process,
// before starting stores. Gauges not set for a minute are dropped.
func EnablePrometheusMetrics(reg prometheus.Registerer, serviceName string) error {
	sink := NewPrometheusSink(serviceName)
	if err := reg.Register(sink); err != nil {
		return fmt.Errorf("raftpersist: prometheus sink: %w", err)
	}
	conf := metrics.DefaultConfig("") // the sink adds serviceName itself
	conf.EnableHostname = false
	conf.EnableRuntimeMetrics = false
	if _, err := metrics.NewGlobal(conf, sink); err != nil {
		return fmt.Errorf("raftpersist: go-metrics: %w", err)
	}
	return nil
}

// PrometheusSink is a go-metrics sink that is also a Prometheus collector:
// it keeps what go-metrics reports under conventional Prometheus names
// (see [EnablePrometheusMetrics]) and hands it over at each scrape. It is
// safe for concurrent use.
type PrometheusSink struct {
	prefix string
	now    func() time.Time

	mu       sync.Mutex
	series   map[string]*series // by family name and label pairs
	families map[string]family  // by family name
}

// gaugeExpiry is how long a gauge is exported after it was last set.
const gaugeExpiry = time.Minute

type family struct {
	kind metricKind
	help string
}

type metricKind int

const (
	kindGauge metricKind = iota
	kindCounter
	kindSummary
)

type series struct {
	name    string
	labels  []string // names and values, alternating, sorted by name
	value   float64
	summary prometheus.Summary
	updated time.Time
}

var (
	_ metrics.MetricSink   = (*PrometheusSink)(nil)
	_ prometheus.Collector = (*PrometheusSink)(nil)
)

// NewPrometheusSink returns a sink whose metric names start with
// serviceName and "_". Register it with a Prometheus registry and install
// it as go-metrics' sink (EnablePrometheusMetrics does both).
func NewPrometheusSink(serviceName string) *PrometheusSink {
	return &PrometheusSink{prefix: serviceName, now: time.Now, series: map[string]*series{}, families: map[string]family{}}
}

// SetGauge sets a gauge.
func (s *PrometheusSink) SetGauge(key []string, val float32) { s.SetGaugeWithLabels(key, val, nil) }

// SetGaugeWithLabels sets a gauge.
func (s *PrometheusSink) SetGaugeWithLabels(key []string, val float32, labels []metrics.Label) {
	s.record(kindGauge, key, val, labels)
}

// EmitKey is ignored: no library of this module emits keys.
func (s *PrometheusSink) EmitKey([]string, float32) {}

// IncrCounter adds to a counter.
func (s *PrometheusSink) IncrCounter(key []string, val float32) {
	s.IncrCounterWithLabels(key, val, nil)
}

// IncrCounterWithLabels adds to a counter.
func (s *PrometheusSink) IncrCounterWithLabels(key []string, val float32, labels []metrics.Label) {
	s.record(kindCounter, key, val, labels)
}

// AddSample observes a sample of a summary.
func (s *PrometheusSink) AddSample(key []string, val float32) { s.AddSampleWithLabels(key, val, nil) }

// AddSampleWithLabels observes a sample of a summary.
func (s *PrometheusSink) AddSampleWithLabels(key []string, val float32, labels []metrics.Label) {
	s.record(kindSummary, key, val, labels)
}

func (s *PrometheusSink) record(kind metricKind, key []string, val float32, labels []metrics.Label) {
	n, ok := translate(s.prefix, kind, key, labels)
	if !ok {
		return
	}
	v := float64(val) * n.scale
	id := n.name + "\xff" + strings.Join(n.labels, "\xff")
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.families[n.name]; !ok {
		s.families[n.name] = family{kind: kind, help: n.help}
	} else if f.kind != kind {
		return // one name, two kinds: the first one stays
	}
	sr := s.series[id]
	if sr == nil {
		sr = &series{name: n.name, labels: n.labels}
		if kind == kindSummary {
			sr.summary = prometheus.NewSummary(prometheus.SummaryOpts{
				Name: n.name, Help: s.families[n.name].help, ConstLabels: constLabels(n.labels),
				Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001},
			})
		}
		s.series[id] = sr
	}
	sr.updated = s.now()
	switch kind {
	case kindGauge:
		sr.value = v
	case kindCounter:
		sr.value += v
	case kindSummary:
		sr.summary.Observe(v)
	}
}

func constLabels(pairs []string) prometheus.Labels {
	if len(pairs) == 0 {
		return nil
	}
	l := prometheus.Labels{}
	for i := 0; i+1 < len(pairs); i += 2 {
		l[pairs[i]] = pairs[i+1]
	}
	return l
}

// Describe describes nothing: the families are known only once reported,
// so the sink is an unchecked collector.
func (s *PrometheusSink) Describe(chan<- *prometheus.Desc) {}

// Collect hands over every series; gauges not set for a minute are
// dropped.
func (s *PrometheusSink) Collect(ch chan<- prometheus.Metric) {
	var out []prometheus.Metric
	var summaries []prometheus.Summary
	s.mu.Lock()
	now := s.now()
	for id, sr := range s.series {
		f := s.families[sr.name]
		switch f.kind {
		case kindGauge:
			if now.Sub(sr.updated) > gaugeExpiry {
				delete(s.series, id)
				continue
			}
			out = append(out, prometheus.MustNewConstMetric(desc(sr, f), prometheus.GaugeValue, sr.value, labelValues(sr.labels)...))
		case kindCounter:
			out = append(out, prometheus.MustNewConstMetric(desc(sr, f), prometheus.CounterValue, sr.value, labelValues(sr.labels)...))
		case kindSummary:
			summaries = append(summaries, sr.summary)
		}
	}
	s.mu.Unlock()
	for _, m := range out {
		ch <- m
	}
	for _, sm := range summaries {
		sm.Collect(ch)
	}
}

func desc(sr *series, f family) *prometheus.Desc {
	var names []string
	for i := 0; i < len(sr.labels); i += 2 {
		names = append(names, sr.labels[i])
	}
	return prometheus.NewDesc(sr.name, f.help, names, nil)
}

func labelValues(pairs []string) []string {
	var vs []string
	for i := 1; i < len(pairs); i += 2 {
		vs = append(vs, pairs[i])
	}
	return vs
}

// A translated metric: its Prometheus name, labels (name, value pairs
// sorted by name), help and the factor its values are multiplied by.
type translated struct {
	name   string
	labels []string
	help   string
	scale  float64
}

// Values in milliseconds other than timers, and values of summaries that
// are not durations, by their go-metrics key; a key under one of the
// notDurationPrefixes is not a duration either.
var (
	millisecondGauges = map[string]bool{"raft.fsm.lastRestoreDuration": true}
	sampleUnits       = map[string]string{
		"raft.boltdb.logSize": "bytes", "raft.boltdb.logBatchSize": "bytes", "raft.boltdb.logsPerBatch": "",
		"raft.boltdb.writeCapacity": "", "raft.fsm.applyBatchNum": "",
		"raft.thread.main.saturation": "ratio", "raft.thread.fsm.saturation": "ratio",
		"serf.msgs.sent": "bytes", "serf.msgs.received": "bytes",
		"memberlist.size.remote": "bytes", "memberlist.queue.broadcasts": "",
	}
	notDurationPrefixes = []string{"serf.queue."}
	byteGauges          = map[string]bool{"memberlist.size.local": true}
	byteCounters        = map[string]bool{"memberlist.tcp.sent": true, "memberlist.udp.sent": true, "memberlist.udp.received": true}
	// libraries name the source of a metric in its help text.
	libraries = map[string]string{
		"raft": "hashicorp/raft", "serf": "hashicorp/serf", "memberlist": "hashicorp/memberlist",
		"raftpersist": "pkg/raftpersist", "serfevents": "pkg/serfevents",
	}
)

// translate maps a go-metrics key and labels to a Prometheus metric, or
// says to leave it out.
func translate(prefix string, kind metricKind, key []string, labels []metrics.Label) (translated, bool) {
	if len(key) > 0 && key[0] == prefix {
		key = key[1:] // this module's own keys start with the service name
	}
	if len(key) == 0 {
		return translated{}, false
	}
	dotted := strings.Join(key, ".")
	t := translated{scale: 1}
	var pairs [][2]string
	parts, byName := key, false
	switch {
	case len(key) >= 3 && key[0] == "raft" && key[1] == "replication":
		// raft's deprecated copies name the peer: the labelled ones stay.
		base := 3
		if key[2] == "appendEntries" {
			base = 4
		}
		if len(key) > base {
			return translated{}, false
		}
	case len(key) == 3 && key[0] == "serf" && key[1] == "events":
		parts, pairs, byName = []string{"serf", "user_events"}, [][2]string{{"event", key[2]}}, true
	case len(key) == 3 && key[0] == "serf" && key[1] == "queries":
		parts, pairs, byName = []string{"serf", "user_queries"}, [][2]string{{"query", key[2]}}, true
	}
	words := make([]string, 0, len(parts)+1)
	if prefix != "" {
		words = append(words, prefix)
	}
	for _, p := range parts {
		words = append(words, snake(p))
	}
	name := strings.Join(words, "_")
	unit := ""
	switch {
	case strings.HasSuffix(name, "_ms"):
		name, unit, t.scale = strings.TrimSuffix(name, "_ms"), "seconds", 1e-3
	case kind == kindGauge && (millisecondGauges[dotted] || strings.HasSuffix(dotted, ".oldestLogAge")):
		unit, t.scale = "seconds", 1e-3
	case kind == kindGauge && byteGauges[dotted]:
		unit = "bytes"
	case kind == kindCounter && byteCounters[dotted]:
		unit = "bytes"
	case kind == kindSummary:
		u, known := sampleUnits[dotted]
		switch {
		case known:
			unit = u
		case slices.ContainsFunc(notDurationPrefixes, func(p string) bool { return strings.HasPrefix(dotted, p) }):
		default:
			unit, t.scale = "seconds", 1e-3 // a timer: go-metrics measures in milliseconds
		}
	}
	if unit != "" && !strings.HasSuffix(name, "_"+unit) {
		name += "_" + unit
	}
	if kind != kindSummary {
		// _count and _sum belong to summaries and histograms.
		for _, suffix := range []string{"_count", "_sum", "_bucket"} {
			if strings.HasSuffix(name, suffix) {
				name += "_value"
			}
		}
	}
	if kind == kindCounter && !strings.HasSuffix(name, "_total") {
		name += "_total"
	}
	t.name = name
	for _, l := range labels {
		ln := snake(l.Name)
		if ln == "peer_id" {
			ln = "peer"
		}
		if ln == "" || ln == "quantile" || ln == "le" {
			continue
		}
		pairs = append(pairs, [2]string{ln, l.Value})
	}
	for i := range pairs {
		pairs[i][1] = labelValue(pairs[i][1])
	}
	slices.SortStableFunc(pairs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	pairs = slices.CompactFunc(pairs, func(a, b [2]string) bool { return a[0] == b[0] })
	for _, p := range pairs {
		t.labels = append(t.labels, p[0], p[1])
	}
	what := map[metricKind]string{kindGauge: "gauge", kindCounter: "counter", kindSummary: "sample"}[kind]
	if t.scale != 1 {
		what += " in milliseconds, here in seconds"
	}
	lib := libraries[key[0]]
	if lib == "" {
		lib = "go-metrics"
	}
	t.help = fmt.Sprintf("%s's %s %s.", lib, what, dotted)
	if byName {
		t.help = fmt.Sprintf("%s's counter %s.NAME, by NAME.", lib, strings.Join(key[:2], "."))
	}
	return t, true
}

// maxLabelValue bounds a label value: a name a remote peer chose (a serf
// event's) must not grow the scrape without bound.
const maxLabelValue = 128

// labelValue is v as valid UTF-8 of at most maxLabelValue bytes.
func labelValue(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	for len(v) > maxLabelValue {
		_, n := utf8.DecodeLastRuneInString(v)
		v = v[:len(v)-n]
	}
	return v
}

// snake turns a go-metrics key part or label name into snake_case of
// ASCII letters, digits and underscores: "appendEntries" is
// "append_entries", "getRPCType" "get_rpc_type", "adjustment-ms"
// "adjustment_ms".
func snake(s string) string {
	upper := func(c byte) bool { return c >= 'A' && c <= 'Z' }
	lower := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
	var b []byte
	sep := func() {
		if len(b) > 0 && b[len(b)-1] != '_' {
			b = append(b, '_')
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case upper(c):
			// A word starts at an upper-case letter after a lower-case one,
			// and at the last capital of an acronym ("RPCType").
			if i > 0 && (lower(s[i-1]) || upper(s[i-1]) && i+1 < len(s) && s[i+1] >= 'a' && s[i+1] <= 'z') {
				sep()
			}
			b = append(b, c+'a'-'A')
		case lower(c):
			b = append(b, c)
		default:
			sep()
		}
	}
	return strings.Trim(string(b), "_")
}
