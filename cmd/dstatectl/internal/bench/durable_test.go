package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/raftpersist"
)

func TestDurableOneModeOneStore(t *testing.T) {
	tuned := 0
	r, err := Durable(smokeCtx(t), DurableConfig{Slice: 100 * time.Millisecond, Rounds: 1, Concurrency: 1, PayloadSize: 16, Dir: t.TempDir(),
		LogStores: []string{raftpersist.LogStoreWAL}, Modes: []string{"group-commit"},
		Tune: func(c *raftpersist.Config) { tuned++; c.MaxInflight = 2 }})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "wal group-commit saves/s", "wal group-commit save CPU", "wal group-commit raw CPU", "wal group-commit save p50 ÷ raw p50")
	for _, m := range r.Metrics {
		if strings.Contains(m.Name, "unbatched") || strings.Contains(m.Name, "boltdb") {
			t.Errorf("metric %q of a mode or store not asked for", m.Name)
		}
		if m.Name == "wal group-commit save p50 ÷ raw p50" && m.Met == nil {
			t.Errorf("one saver: %q has no target", m.Name)
		}
		if m.Name == "wal group-commit saves/s ÷ raw applies/s" && m.Met != nil {
			t.Errorf("one saver: %q has the 64-saver target", m.Name)
		}
	}
	if tuned != 3 {
		t.Errorf("Tune ran for %d stores, want 3", tuned)
	}
}

func TestDurableConfigRejectsUnknownMode(t *testing.T) {
	cfg := DefaultDurableConfig()
	cfg.Modes = []string{"group-commit", "batched"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `"batched"`) {
		t.Fatalf("Validate: %v, want an error naming the mode", err)
	}
}

func TestDurableSavesOnly(t *testing.T) {
	r, err := Durable(smokeCtx(t), DurableConfig{Slice: 100 * time.Millisecond, Rounds: 1, Concurrency: 2, PayloadSize: 16, Dir: t.TempDir(),
		LogStores: []string{raftpersist.LogStoreBoltDB}, Modes: []string{"group-commit"}, Slices: []string{"saves"}})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "group-commit saves/s", "group-commit save CPU")
	for _, m := range r.Metrics {
		if strings.Contains(m.Name, "raw") {
			t.Errorf("metric %q of a slice kind not run", m.Name)
		}
	}
	cfg := DefaultDurableConfig()
	cfg.Slices = []string{"reads"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `"reads"`) {
		t.Fatalf("Validate: %v, want an error naming the slice kind", err)
	}
}
