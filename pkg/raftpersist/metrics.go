package raftpersist

import (
	"fmt"

	metrics "github.com/hashicorp/go-metrics/compat"
	metricsprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// EnablePrometheusMetrics routes the metrics of raft and raft-boltdb to a
// Prometheus registerer, with names prefixed by serviceName (e.g.
// "dstate_raft_commitTime"). Raft reports to go-metrics' process-global
// registry (through go-metrics/compat, which selects armon/go-metrics
// unless built with the hashicorpmetrics tag), so this is process-wide:
// call it once per process, before starting stores. Metrics not updated
// for a minute expire.
func EnablePrometheusMetrics(reg prometheus.Registerer, serviceName string) error {
	opts := metricsprom.DefaultPrometheusOpts
	opts.Registerer = reg
	opts.Name = serviceName + "_raftpersist_sink"
	sink, err := metricsprom.NewPrometheusSinkFrom(opts)
	if err != nil {
		return fmt.Errorf("raftpersist: prometheus sink: %w", err)
	}
	conf := metrics.DefaultConfig(serviceName)
	conf.EnableHostname = false
	conf.EnableRuntimeMetrics = false
	if _, err := metrics.NewGlobal(conf, sink); err != nil {
		return fmt.Errorf("raftpersist: go-metrics: %w", err)
	}
	return nil
}
