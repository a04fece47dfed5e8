package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// The smoke tests run every scenario at a tiny size and check that it
// produces a sane table. They assert no timing.

func checkResult(t *testing.T, r *Result, wantMetrics ...string) {
	t.Helper()
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + buf.String())
	if !strings.Contains(buf.String(), "== "+r.Scenario+":") || !strings.Contains(buf.String(), "METRIC") {
		t.Errorf("table lacks its header:\n%s", buf.String())
	}
	for _, m := range wantMetrics {
		v, ok := r.Get(m)
		if !ok {
			t.Errorf("metric %q missing", m)
			continue
		}
		if v <= 0 {
			t.Errorf("metric %q = %g, want > 0", m, v)
		}
	}
	buf.Reset()
	if err := WriteJSON(&buf, []*Result{r}); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(buf.Bytes()) {
		t.Errorf("invalid JSON:\n%s", buf.String())
	}
}

func smokeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLatencySmoke(t *testing.T) {
	cfg := LatencyConfig{Mutations: 300, Rate: 3000, Rounds: 1, BaselineUpdates: 10, BaselineRate: 100, GossipInterval: 20 * time.Millisecond}
	r, err := Latency(smokeCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "dstate p50", "dstate p99", "memberlist p50", "serf p50", "memberlist/dstate p50 ratio")
}

func TestThroughputSmoke(t *testing.T) {
	r, err := Throughput(smokeCtx(t), ThroughputConfig{Duration: 300 * time.Millisecond, Window: 256})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "deltas/s to each peer (slowest)", "allocs per delivered delta")
}

func TestDurableSmoke(t *testing.T) {
	r, err := Durable(smokeCtx(t), DurableConfig{Slice: 200 * time.Millisecond, Rounds: 1, Concurrency: 8, PayloadSize: 16, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "unbatched saves/s", "group-commit saves/s", "unbatched raw raft.Apply/s", "group-commit saves/s ÷ raw applies/s",
		"wal unbatched saves/s", "wal group-commit saves/s", "wal ÷ boltdb unbatched raw raft.Apply/s")
}

func TestFeedSmoke(t *testing.T) {
	r, err := Feed(smokeCtx(t), FeedConfig{States: 3, Rate: 50, Duration: 300 * time.Millisecond, BatchInterval: 100 * time.Millisecond, Keys: 4})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "active push: bytes per mutation", "change feed: bytes per mutation", "bytes reduction (push ÷ feed)")
}

func TestCatchupSmoke(t *testing.T) {
	r, err := Catchup(smokeCtx(t), CatchupConfig{Nodes: 3, Entries: 3000, Runs: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "catch-up time (median of runs)", "largest snapshot")
}

func TestScaleSmoke(t *testing.T) {
	r, err := Scale(smokeCtx(t), ScaleConfig{Nodes: 10, States: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "join: time to converge", "heap per view entry (engines included)")
}

// TestMachineReportsTheCollector checks that a result records the GOGC and
// memory limit in effect, as `bench --gogc` and GOMEMLIMIT set them.
func TestMachineReportsTheCollector(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(250))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(3 << 30))
	m := ThisMachine()
	if m.GOGC != "250" || m.MemoryLimit != 3<<30 {
		t.Fatalf("got GOGC %q, memory limit %d; want 250 and %d", m.GOGC, m.MemoryLimit, int64(3<<30))
	}
	var b strings.Builder
	if err := (&Result{Scenario: "s", Machine: m}).WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(GOGC 250, memory limit 3072 MiB)") {
		t.Errorf("the table's machine line does not name the collector's settings:\n%s", b.String())
	}
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(math.MaxInt64)
	if m := ThisMachine(); m.GOGC != "off" || m.MemoryLimit != 0 {
		t.Errorf("with the collector off and no limit: got GOGC %q, memory limit %d; want off and 0", m.GOGC, m.MemoryLimit)
	}
}
