package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/raftpersist"
)

// DurableConfig configures [Durable].
type DurableConfig struct {
	// Slice is how long each alternating slice (saves, then raw applies)
	// runs; Rounds is how many pairs of slices run per cluster.
	Slice  time.Duration
	Rounds int
	// Concurrency is the number of concurrent savers (each its own node key).
	Concurrency int
	// PayloadSize is the size of each saved state in bytes.
	PayloadSize int
	// Dir holds the raft data directories (a temporary directory when
	// empty); fsync is on, so it should be on the disk under test.
	Dir string
	// LogStores are the raft log stores measured, one after the other
	// (raftpersist.LogStoreBoltDB, raftpersist.LogStoreWAL; default both).
	// The metrics of boltdb, the default store, carry no prefix; those of
	// the others start with the store's name ("wal unbatched saves/s").
	LogStores []string
	// Modes are the clusters measured on each store, in order:
	// "unbatched" (DisableGroupCommit) and "group-commit" (default both).
	Modes []string
	// Slices are the kinds of slice run in each round: "saves" and "raw"
	// (default both). Running one kind alone profiles it alone; the ratio
	// then has nothing to compare and is not reported.
	Slices []string
	// Tune, when set, adjusts each store's configuration before it starts
	// (for trying raftpersist's and raft's parameters).
	Tune func(*raftpersist.Config)
}

// DefaultDurableConfig runs 3 rounds of 2 s slices with 64 savers of 128 B,
// on boltdb and then on wal.
func DefaultDurableConfig() DurableConfig {
	return DurableConfig{Slice: 2 * time.Second, Rounds: 3, Concurrency: 64, PayloadSize: 128,
		LogStores: []string{raftpersist.LogStoreBoltDB, raftpersist.LogStoreWAL}}
}

// Validate names the first invalid field.
func (c DurableConfig) Validate() error {
	switch {
	case c.Slice <= 0:
		return fmt.Errorf("bench: durable: Slice %s, want > 0", c.Slice)
	case c.Rounds < 1:
		return fmt.Errorf("bench: durable: Rounds %d, want ≥ 1", c.Rounds)
	case c.Concurrency < 1:
		return fmt.Errorf("bench: durable: Concurrency %d, want ≥ 1", c.Concurrency)
	case c.PayloadSize < 0:
		return fmt.Errorf("bench: durable: PayloadSize %d, want ≥ 0", c.PayloadSize)
	}
	seen := map[string]bool{}
	for _, s := range c.LogStores {
		if s != raftpersist.LogStoreBoltDB && s != raftpersist.LogStoreWAL {
			return fmt.Errorf("bench: durable: log store %q, want %q or %q", s, raftpersist.LogStoreBoltDB, raftpersist.LogStoreWAL)
		}
		if seen[s] {
			return fmt.Errorf("bench: durable: log store %q listed twice", s)
		}
		seen[s] = true
	}
	for _, m := range c.Modes {
		if m != "unbatched" && m != "group-commit" {
			return fmt.Errorf("bench: durable: mode %q, want \"unbatched\" or \"group-commit\"", m)
		}
	}
	for _, k := range c.Slices {
		if k != "saves" && k != "raw" {
			return fmt.Errorf("bench: durable: slice kind %q, want \"saves\" or \"raw\"", k)
		}
	}
	return nil
}

type bytesCodec struct{ dstate.Versions }

func (bytesCodec) Name() string                                   { return "bench" }
func (bytesCodec) EncodeState(b []byte) ([]byte, error)           { return b, nil }
func (bytesCodec) DecodeState(b []byte, _ uint32) ([]byte, error) { return bytes.Clone(b), nil }

// raftCluster is three raftpersist stores on loopback.
type raftCluster struct {
	stores []*raftpersist.Store
}

func newRaftCluster(ctx context.Context, dir, logStore string, disableGroupCommit bool, tune func(*raftpersist.Config)) (*raftCluster, error) {
	var lns []net.Listener
	var boot []raftpersist.Server
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
		boot = append(boot, raftpersist.Server{ID: dstate.NodeID(fmt.Sprintf("r%d", i)), Address: ln.Addr().String()})
	}
	c := &raftCluster{}
	for i := range 3 {
		cfg := raftpersist.DefaultConfig()
		cfg.NodeID = boot[i].ID
		cfg.DataDir = filepath.Join(dir, string(boot[i].ID))
		cfg.Listener = lns[i]
		cfg.Bootstrap = boot
		cfg.DisableGroupCommit = disableGroupCommit
		cfg.LogStore = logStore
		cfg.Logger = quiet()
		if tune != nil {
			tune(&cfg)
		}
		s, err := raftpersist.New(cfg)
		if err != nil {
			for _, l := range lns[i+1:] {
				_ = l.Close()
			}
			c.close()
			return nil, err
		}
		c.stores = append(c.stores, s)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, s := range c.stores {
		if _, _, err := s.WaitLeader(wctx); err != nil {
			c.close()
			return nil, fmt.Errorf("bench: durable: no raft leader: %w", err)
		}
	}
	if err := c.leader().Raft().Barrier(10 * time.Second).Error(); err != nil {
		c.close()
		return nil, fmt.Errorf("bench: durable: barrier: %w", err)
	}
	return c, nil
}

func (c *raftCluster) leader() *raftpersist.Store {
	for _, s := range c.stores {
		if s.IsLeader() {
			return s
		}
	}
	return c.stores[0]
}

func (c *raftCluster) close() {
	for _, s := range c.stores {
		_ = s.Close()
	}
}

// rawSaveCommand encodes one save exactly as raftpersist's log entries do
// (command version 1, op save, one envelope), so raw raft.Apply commits and
// applies the same bytes a save would. It mirrors an unexported format: if
// raftpersist changes it, the baseline's FSM rejects the command (raft still
// commits it, which is what the baseline measures).
func rawSaveCommand(state string, node dstate.NodeID, age uint64, data []byte) []byte {
	b := make([]byte, 0, len(data)+len(state)+len(node)+48)
	b = append(b, 1, 1)
	b = binary.AppendUvarint(b, 1)
	b = binary.AppendUvarint(b, uint64(len(state)))
	b = append(b, state...)
	b = binary.AppendUvarint(b, uint64(len(node)))
	b = append(b, node...)
	b = binary.AppendUvarint(b, 1)   // incarnation
	b = binary.AppendUvarint(b, age) // age
	b = binary.AppendUvarint(b, 1)   // storage version
	b = binary.AppendVarint(b, 1)    // created
	b = binary.AppendVarint(b, int64(age))
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

// loadResult is what one slice measured.
type loadResult struct {
	ops     int
	elapsed time.Duration
	lat     []time.Duration
	errs    int
	cpu     time.Duration // process CPU time (all three stores) during the slice
}

// runSlice runs op from cfg.Concurrency goroutines for d; op(worker, age)
// performs one operation.
func runSlice(ctx context.Context, workers int, d time.Duration, op func(w int, age uint64) error) loadResult {
	var wg sync.WaitGroup
	var errs atomic.Int64
	lats := make([][]time.Duration, workers)
	deadline := time.Now().Add(d)
	c0 := processCPU()
	t0 := time.Now()
	for w := range workers {
		wg.Go(func() {
			for age := ages[w].Load() + 1; time.Now().Before(deadline) && ctx.Err() == nil; age++ {
				s := time.Now()
				if err := op(w, age); err != nil {
					errs.Add(1)
					continue
				}
				lats[w] = append(lats[w], time.Since(s))
				ages[w].Store(age)
			}
		})
	}
	wg.Wait()
	r := loadResult{elapsed: time.Since(t0), errs: int(errs.Load()), cpu: processCPU() - c0}
	for _, l := range lats {
		r.ops += len(l)
		r.lat = append(r.lat, l...)
	}
	return r
}

// ages is each worker's last acknowledged age: every slice continues from
// it, so saves are never fenced.
var ages [4096]atomic.Uint64

// Durable runs the durable scenario: on a 3-node raft cluster with fsync,
// saves through raftpersist against raw raft.Apply of the same command on
// the leader, alternating slices, first with group commit disabled, then on
// a second cluster with it enabled; and all of it on each log store of
// cfg.LogStores, side by side.
func Durable(ctx context.Context, cfg DurableConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Concurrency > len(ages) {
		return nil, fmt.Errorf("bench: durable: Concurrency %d, want ≤ %d", cfg.Concurrency, len(ages))
	}
	start := time.Now()
	res := newResult("durable", "acknowledged saves vs raw raft.Apply on the same 3-node raft cluster (fsync on)")
	res.param("slice", "%s", cfg.Slice)
	res.param("rounds", "%d", cfg.Rounds)
	res.param("concurrency", "%d", cfg.Concurrency)
	res.param("payload", "%dB", cfg.PayloadSize)
	stores := cfg.LogStores
	if len(stores) == 0 {
		stores = DefaultDurableConfig().LogStores
	}
	res.param("log stores", "%s", strings.Join(stores, ", "))
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "dstate-bench-durable-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	res.param("dir", "%s", dir)
	payload := bytes.Repeat([]byte("x"), cfg.PayloadSize)

	rates := map[string]float64{} // by store and metric
	for _, store := range stores {
		if err := durableOn(ctx, cfg, res, dir, store, payload, rates); err != nil {
			return nil, err
		}
	}
	if len(stores) > 1 {
		for _, m := range []string{"unbatched saves/s", "unbatched raw raft.Apply/s", "group-commit saves/s", "group-commit raw raft.Apply/s"} {
			w, okW := rates[raftpersist.LogStoreWAL+" "+m]
			b, okB := rates[raftpersist.LogStoreBoltDB+" "+m]
			if okW && okB { // both stores ran this mode
				res.metric("wal ÷ boltdb "+m, ratio(w, b), "×")
			}
		}
	}
	res.note("raw raft.Apply sends one save per log entry from the same number of goroutines on the leader; " +
		"hashicorp/raft already batches concurrent applies into one disk write (up to MaxAppendEntries = 64)")
	res.note("saves go through dstate.PersistenceFor(leader, …).Save on the leader; group commit packs concurrent saves into one log entry (MaxBatch 256)")
	res.note("CPU is the whole process's (all three stores) during the slices, per acknowledged save or apply")
	res.note("log stores: boltdb is raft-boltdb/v2 (the default; metrics without prefix), wal is hashicorp/raft-wal (metrics prefixed \"wal \")")
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}

// durableOn runs both modes on clusters using log store store, adding
// their metrics to res (prefixed with the store's name unless it is
// boltdb) and their rates to rates by store and metric.
func durableOn(ctx context.Context, cfg DurableConfig, res *Result, dir, store string, payload []byte, rates map[string]float64) error {
	prefix := ""
	if store != raftpersist.LogStoreBoltDB {
		prefix = store + " "
	}
	for _, mode := range []struct {
		name    string
		disable bool
		target  float64
	}{{"unbatched", true, 0.9}, {"group-commit", false, groupCommitTarget}} {
		if !wantMode(cfg.Modes, mode.name) {
			continue
		}
		c, err := newRaftCluster(ctx, filepath.Join(dir, store, mode.name), store, mode.disable, cfg.Tune)
		if err != nil {
			return err
		}
		for i := range cfg.Concurrency {
			ages[i].Store(0)
		}
		nodes := make([]dstate.NodeID, cfg.Concurrency)
		for w := range nodes {
			nodes[w] = dstate.NodeID(fmt.Sprintf("w%d", w))
		}
		var saves, raws loadResult
		leaders := map[dstate.NodeID]bool{}
		for range cfg.Rounds {
			// The leader is looked up before each pair of slices: under load
			// an election may have moved it.
			leader := c.leader()
			leaders[leader.ID()] = true
			pers := make([]dstate.StatePersistence[[]byte], cfg.Concurrency)
			for w := range pers {
				pers[w] = dstate.PersistenceFor[[]byte](leader, nodes[w], bytesCodec{dstate.Versions{Wire: 1}})
			}
			save := func(w int, age uint64) error {
				obj := &dstate.StateObject[[]byte]{Generation: dstate.Generation{Incarnation: 1, Age: age}, StorageVersion: 1,
					Value: payload, CreatedUnixMs: 1, ModifiedUnixMs: int64(age)}
				return pers[w].Save(ctx, obj, nil)
			}
			r := leader.Raft()
			raw := func(w int, age uint64) error {
				return r.Apply(rawSaveCommand("bench", nodes[w], age, payload), 10*time.Second).Error()
			}
			for i, op := range []func(int, uint64) error{save, raw} {
				if !wantMode(cfg.Slices, []string{"saves", "raw"}[i]) {
					continue
				}
				got := runSlice(ctx, cfg.Concurrency, cfg.Slice, op)
				acc := &saves
				if i == 1 {
					acc = &raws
				}
				acc.ops += got.ops
				acc.elapsed += got.elapsed
				acc.errs += got.errs
				acc.cpu += got.cpu
				acc.lat = append(acc.lat, got.lat...)
			}
		}
		c.close()
		if len(leaders) > 1 {
			res.note("%s%s: the raft leader changed during the run (the machine was busy)", prefix, mode.name)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		sr, rr := float64(saves.ops)/saves.elapsed.Seconds(), float64(raws.ops)/raws.elapsed.Seconds()
		sl, rl := summarize(saves.lat), summarize(raws.lat)
		name := prefix + mode.name
		ranSaves, ranRaw := wantMode(cfg.Slices, "saves"), wantMode(cfg.Slices, "raw")
		// report records one slice's rate, latencies and CPU: label names
		// its latency and CPU rows, rateLabel its rate row.
		report := func(r loadResult, l latencies, rate float64, label, rateLabel, rateUnit, cpuUnit string) {
			rates[store+" "+mode.name+" "+rateLabel] = rate
			res.metric(name+" "+rateLabel, rate, rateUnit)
			res.metric(name+" "+label+" p50", ms(l.p50), "ms")
			res.metric(name+" "+label+" p99", ms(l.p99), "ms")
			res.metric(name+" "+label+" CPU", perOp(r.cpu, r.ops), cpuUnit)
		}
		if ranSaves {
			report(saves, sl, sr, "save", "saves/s", "saves/s", "µs/save")
		}
		if ranRaw {
			report(raws, rl, rr, "raw", "raw raft.Apply/s", "applies/s", "µs/apply")
		}
		if ranSaves && ranRaw {
			if mode.name == "group-commit" && cfg.Concurrency < groupCommitTargetSavers {
				// The target is set at 64 concurrent savers: with fewer,
				// there is less to group.
				res.metric(name+" saves/s ÷ raw applies/s", ratio(sr, rr), "×")
			} else {
				res.atLeast(name+" saves/s ÷ raw applies/s", ratio(sr, rr), "×", mode.target)
			}
			if cfg.Concurrency == 1 {
				// A lone saver: what the save path adds to one raw apply.
				res.atMost(name+" save p50 ÷ raw p50", ratio(float64(sl.p50), float64(rl.p50)), "×", 1.5)
			} else {
				res.metric(name+" save p50 ÷ raw p50", ratio(float64(sl.p50), float64(rl.p50)), "×")
			}
		}
		if saves.errs+raws.errs > 0 {
			res.note("%s: %d saves and %d raw applies failed (not counted)", name, saves.errs, raws.errs)
		}
	}
	return nil
}

// groupCommitTarget is the group-commit target, saves/s ÷ raw applies/s,
// which applies from groupCommitTargetSavers concurrent savers on.
const (
	groupCommitTarget       = 3
	groupCommitTargetSavers = 64
)

// wantMode reports whether mode is among modes (all modes when empty);
// it serves the slice kinds too.
func wantMode(modes []string, mode string) bool {
	return len(modes) == 0 || slices.Contains(modes, mode)
}

// perOp is cpu per operation in microseconds (0 without operations).
func perOp(cpu time.Duration, ops int) float64 {
	if ops == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(ops)
}
