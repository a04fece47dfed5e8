package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// Overload bounds: what an agent may hold while it is driven past what it
// can replicate. They are memory bounds, not timings.
const (
	overloadRate       = 50000 // mutations per second over the cluster
	overloadQueue      = 64    // --peer-queue-frames
	overloadMaxRSS     = 512 << 20
	overloadMaxHeapUse = 256 << 20
)

// scrape reads the agent's /metrics into "name{labels}" → value.
func scrape(nd *node) (map[string]float64, error) {
	resp, err := http.Get("http://" + nd.httpAddr() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET /metrics on %s: %d %s", nd.id, resp.StatusCode, b)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out, sc.Err()
}

// sumPrefix adds the samples whose series starts with prefix.
func sumPrefix(m map[string]float64, prefix string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

// TestOverloadKeepsMemoryAndQueuesBounded drives three agents with 50,000
// mutations per second between them (60 s in make e2e, 5 s in make test),
// with small per-peer queues. Throughout, every peer queue stays within its
// bound and every agent's memory within overloadMaxRSS; the backpressure
// counters (queue refusals, refused or late writes) rise instead. Once the
// load stops, every node holds every other node's final state: nothing
// acknowledged was lost to the overload.
func TestOverloadKeepsMemoryAndQueuesBounded(t *testing.T) {
	run := 5 * time.Second
	if full() {
		run = 60 * time.Second
	}
	const nodes = 3
	perNode := overloadRate / nodes
	c := newCluster(t, nodes, clusterOpts{extra: func(int) []string {
		return []string{"--test-load-rate", strconv.Itoa(perNode), "--test-load-for", run.String(),
			"--peer-queue-frames", strconv.Itoa(overloadQueue)}
	}})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)

	var maxRSS, maxHeap, maxQueue float64
	deadline := time.Now().Add(run + 5*time.Second)
	var last map[string]map[string]float64
	for time.Now().Before(deadline) {
		last = map[string]map[string]float64{}
		for _, nd := range c.nodes {
			m, err := scrape(nd)
			if err != nil {
				t.Fatal(err)
			}
			last[nd.id] = m
			maxRSS = max(maxRSS, m["process_resident_memory_bytes"])
			maxHeap = max(maxHeap, m["go_memstats_heap_inuse_bytes"])
			for k, v := range m {
				if strings.HasPrefix(k, "dstate_transport_queue_frames{") {
					maxQueue = max(maxQueue, v)
					if v > overloadQueue {
						t.Fatalf("%s: %s = %v, over the bound of %d", nd.id, k, v, overloadQueue)
					}
				}
			}
			if m["process_resident_memory_bytes"] > overloadMaxRSS || m["go_memstats_heap_inuse_bytes"] > overloadMaxHeapUse {
				t.Fatalf("%s: resident %v MiB, heap in use %v MiB: over the bounds of %d and %d MiB", nd.id,
					m["process_resident_memory_bytes"]/(1<<20), m["go_memstats_heap_inuse_bytes"]/(1<<20), overloadMaxRSS>>20, overloadMaxHeapUse>>20)
			}
		}
		time.Sleep(250 * time.Millisecond) // the sampling period, not synchronization
	}
	var written, backpressure float64
	for _, nd := range c.nodes {
		m := last[nd.id]
		w := m[`dstate_test_load_total{outcome="written"}`]
		bp := m[`dstate_limit_exceeded_total{limit="peer_queue_frames"}`] +
			m[`dstate_test_load_total{outcome="refused"}`] + m[`dstate_test_load_total{outcome="behind"}`]
		t.Logf("%s: %.0f writes (%.0f/s), backpressure events %.0f (queue refusals %.0f, refused writes %.0f, late ticks %.0f), deltas sent %.0f",
			nd.id, w, w/run.Seconds(), bp, m[`dstate_limit_exceeded_total{limit="peer_queue_frames"}`],
			m[`dstate_test_load_total{outcome="refused"}`], m[`dstate_test_load_total{outcome="behind"}`],
			sumPrefix(m, `dstate_sync_total{counter="deltas_sent",state="test-load"}`))
		if w == 0 {
			t.Fatalf("%s wrote nothing: the load generator did not run", nd.id)
		}
		written += w
		backpressure += bp
	}
	t.Logf("max resident %.0f MiB, max heap in use %.0f MiB, max peer queue %.0f of %d", maxRSS/(1<<20), maxHeap/(1<<20), maxQueue, overloadQueue)
	if backpressure == 0 {
		t.Fatalf("no backpressure counter rose at %d mutations/s with %d-frame queues", overloadRate, overloadQueue)
	}
	measured(t, fmt.Sprintf("overload: %d writes at a %d/s target over %s", int(written), overloadRate, run), run)
	c.waitConverged(c.nodes, 60*time.Second, agent.TestLoadState)
}
