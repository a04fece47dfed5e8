package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dstate-go/dstate/cmd/dstatectl/internal/bench"
)

// benchCommand is the `bench` group: one subcommand per scenario of
// internal/bench, and `all`.
func benchCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "bench",
		Usage:     "measure dstate against its alternatives in this process (latency, throughput, durable, feed, catchup, scale, heal, idle, failedpeer, watch)",
		UsageText: "dstatectl [global options] bench command [command options]",
		Description: "Runs a benchmark scenario in this process on loopback and prints a table of figures with\n" +
			"their targets (--format json prints JSON instead; --json FILE also writes it to a file).\n" +
			"Baselines (memberlist, serf, raw raft.Apply, active push) run in the same process,\n" +
			"alternating with dstate. 'make bench' runs the Go micro-benchmarks and 'bench all --quick'.\n" +
			"BENCHMARKS.md records the figures of a full run.\n\n" +
			"Example:\n" +
			"   dstatectl bench latency --mutations 10000\n" +
			"   dstatectl bench all --quick --json bench.json",
		Subcommands: []*ucli.Command{
			benchScenario("latency", "replication latency over 3 loopback nodes vs memberlist broadcasts and serf user events",
				"Three nodes over loopback TCP; n0 mutates at a fixed rate and the time until n1 and n2 applied\n"+
					"each update is recorded (p50, p99, p99.9). Then, in alternating rounds at a lower rate, the same\n"+
					"updates go through dstate, hashicorp/memberlist broadcasts (TransmitLimitedQueue + NotifyMsg)\n"+
					"and serf user events, and the ratios are reported.",
				"dstatectl bench latency --mutations 10000",
				[]ucli.Flag{
					&ucli.IntFlag{Name: "mutations", Value: bench.DefaultLatencyConfig().Mutations, Usage: "dstate mutations of the main run"},
					&ucli.Float64Flag{Name: "rate", Value: bench.DefaultLatencyConfig().Rate, Usage: "mutations per second of the main run"},
					&ucli.IntFlag{Name: "rounds", Value: bench.DefaultLatencyConfig().Rounds, Usage: "alternating comparison rounds (0: no baselines)"},
					&ucli.IntFlag{Name: "baseline-updates", Value: bench.DefaultLatencyConfig().BaselineUpdates, Usage: "updates per system and round"},
					&ucli.Float64Flag{Name: "baseline-rate", Value: bench.DefaultLatencyConfig().BaselineRate, Usage: "updates per second in the comparison rounds"},
					&ucli.DurationFlag{Name: "gossip-interval", Usage: "memberlist/serf gossip interval (0: memberlist's LAN default, 200ms)"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.Latency(ctx, latencyConfig(c))
				}),
			benchScenario("throughput", "sustained deltas per second to each peer with bounded queues, and allocations per delta",
				"Three nodes over loopback TCP; one writer on n0 keeps a bounded window of mutations in flight\n"+
					"(closed loop, so no queue grows) and the deltas each peer applies per second are counted,\n"+
					"with the process's allocations per delivered delta and the heap and queue sizes seen.",
				"dstatectl bench throughput --duration 2s",
				[]ucli.Flag{
					&ucli.DurationFlag{Name: "duration", Value: bench.DefaultThroughputConfig().Duration, Usage: "measured interval"},
					&ucli.IntFlag{Name: "window", Value: bench.DefaultThroughputConfig().Window, Usage: "most mutations in flight"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.Throughput(ctx, throughputConfig(c))
				}),
			benchScenario("durable", "raftpersist saves vs raw raft.Apply on the same 3-node raft cluster, unbatched and group-committed, on each log store",
				"Starts a 3-node raft cluster (fsync on) in a temporary directory, alternates slices of saves\n"+
					"through raftpersist with slices of raw raft.Apply of the same command on the leader, first with\n"+
					"group commit disabled, then on a fresh cluster with it enabled; reports saves/s, p50/p99 and\n"+
					"both ratios. All of it runs on each log store of --log-store (boltdb, then wal, by default),\n"+
					"and the wal figures are compared with boltdb's.",
				"dstatectl bench durable --slice 1s --rounds 2 --log-store wal",
				[]ucli.Flag{
					&ucli.DurationFlag{Name: "slice", Value: bench.DefaultDurableConfig().Slice, Usage: "length of each alternating slice"},
					&ucli.IntFlag{Name: "rounds", Value: bench.DefaultDurableConfig().Rounds, Usage: "pairs of slices per cluster"},
					&ucli.IntFlag{Name: "concurrency", Value: bench.DefaultDurableConfig().Concurrency, Usage: "concurrent savers"},
					&ucli.IntFlag{Name: "payload", Value: bench.DefaultDurableConfig().PayloadSize, Usage: "bytes per saved state"},
					&ucli.StringFlag{Name: "dir", Usage: "`DIR` for the raft data (default: a temporary directory)"},
					&ucli.StringFlag{Name: "log-store", Value: strings.Join(bench.DefaultDurableConfig().LogStores, ","), Usage: "raft log stores to measure, comma-separated: boltdb, wal"},
					&ucli.StringFlag{Name: "mode", Value: "unbatched,group-commit", Usage: "clusters to measure on each store, comma-separated: unbatched, group-commit"},
					&ucli.StringFlag{Name: "slices", Value: "saves,raw", Usage: "kinds of slice to run, comma-separated: saves, raw (one alone, to profile it)"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.Durable(ctx, durableConfig(c))
				}),
			benchScenario("feed", "bytes and frames on the wire per mutation: change feed vs active push",
				"Two 3-node clusters side by side, one with active push and one with the change feed (lazy\n"+
					"pull), take the same mutations on n0 (states × rate for the duration); the frames and bytes\n"+
					"every transport writes are counted and the reduction factor reported.",
				"dstatectl bench feed --duration 5s",
				[]ucli.Flag{
					&ucli.IntFlag{Name: "states", Value: bench.DefaultFeedConfig().States, Usage: "states mutated on n0"},
					&ucli.Float64Flag{Name: "rate", Value: bench.DefaultFeedConfig().Rate, Usage: "mutations per second of each state"},
					&ucli.DurationFlag{Name: "duration", Value: bench.DefaultFeedConfig().Duration, Usage: "length of the mutation load"},
					&ucli.DurationFlag{Name: "batch-interval", Usage: "change-feed batch interval (0: the default, 1s)"},
					&ucli.IntFlag{Name: "keys", Value: bench.DefaultFeedConfig().Keys, Usage: "keys each state cycles through"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.Feed(ctx, feedConfig(c))
				}),
			benchScenario("catchup", "time for a joining node to receive a cluster's 100,000 view entries",
				"Nodes each own a key-value delta state holding their share of the entries; a new node joins\n"+
					"over loopback TCP and the time until its views of every owner are complete is measured\n"+
					"(several joins, a fresh node each).",
				"dstatectl bench catchup --entries 100000",
				[]ucli.Flag{
					&ucli.IntFlag{Name: "nodes", Value: bench.DefaultCatchupConfig().Nodes, Usage: "nodes before the join"},
					&ucli.IntFlag{Name: "entries", Value: bench.DefaultCatchupConfig().Entries, Usage: "view entries held in total"},
					&ucli.IntFlag{Name: "runs", Value: bench.DefaultCatchupConfig().Runs, Usage: "joins measured"},
					&ucli.IntFlag{Name: "max-frame", Value: bench.DefaultCatchupConfig().MaxFrameSize, Usage: "transport MaxFrameSize in bytes (0: the transport's default); larger snapshots are fragmented"},
					&ucli.IntFlag{Name: "key-bytes", Usage: "pad every key to this many bytes (0: short keys); 65536 entries of 4096 on one node are a 256 MiB state"},
					&ucli.BoolFlag{Name: "heap", Usage: "sample the heap during each join: peak above the live heap before it, and what it left live"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.Catchup(ctx, catchupConfig(c))
				}),
			benchScenario("scale", "100 simulated nodes × 10 states in one process: convergence after a join, memory per view entry",
				"Runs nodes × states engines over an in-memory network in this process: forms the cluster,\n"+
					"measures the live heap per view entry, then joins one more node and measures the time and\n"+
					"messages until every view everywhere is current.",
				"dstatectl bench scale --nodes 100 --states 10",
				[]ucli.Flag{
					&ucli.IntFlag{Name: "nodes", Value: bench.DefaultScaleConfig().Nodes, Usage: "simulated nodes"},
					&ucli.IntFlag{Name: "states", Value: bench.DefaultScaleConfig().States, Usage: "states per node"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.Scale(ctx, scaleConfig(c))
				}),
			benchScenario("heal", "time until every view is current after a partition heals with no further writes: periodic full sync vs digests",
				"Nodes each own a key-value delta state; every frame is dropped while each node writes one key,\n"+
					"then the partition heals and nothing more is written. The time until every node holds every\n"+
					"other node's current generation is measured, first with a blind periodic full sync (the former\n"+
					"default, no digests), then with digests at the node's default interval and no full sync.",
				"dstatectl bench heal --runs 3",
				[]ucli.Flag{
					&ucli.IntFlag{Name: "nodes", Value: bench.DefaultHealConfig().Nodes, Usage: "cluster size"},
					&ucli.IntFlag{Name: "entries", Value: bench.DefaultHealConfig().Entries, Usage: "keys per node"},
					&ucli.IntFlag{Name: "runs", Value: bench.DefaultHealConfig().Runs, Usage: "partitions healed per design"},
					&ucli.DurationFlag{Name: "full-sync", Value: bench.DefaultHealConfig().FullSync, Usage: "periodic full-sync interval of the former design"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.Heal(ctx, healConfig(c))
				}),
			benchScenario("idle", "bytes per node and second an idle cluster holding 100,000 entries sends: periodic full sync vs digests",
				"Nodes each own a key-value delta state holding their share of the entries; once converged the\n"+
					"cluster writes nothing, and the bytes its transports send are counted per node and second,\n"+
					"first with a blind periodic full sync (the former default, no digests), then with digests at\n"+
					"the node's default interval and no full sync.",
				"dstatectl bench idle --duration 60s",
				[]ucli.Flag{
					&ucli.IntFlag{Name: "nodes", Value: bench.DefaultIdleConfig().Nodes, Usage: "cluster size"},
					&ucli.IntFlag{Name: "entries", Value: bench.DefaultIdleConfig().Entries, Usage: "keys held in total"},
					&ucli.DurationFlag{Name: "duration", Value: bench.DefaultIdleConfig().Duration, Usage: "measured idle interval per design"},
					&ucli.DurationFlag{Name: "full-sync", Value: bench.DefaultIdleConfig().FullSync, Usage: "periodic full-sync interval of the former design"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.Idle(ctx, idleConfig(c))
				}),
			benchScenario("failedpeer", "query latency on a survivor while one of three nodes is down and reported failed",
				"Three nodes over loopback TCP own a key-value state; n2 is closed and reported failed, then\n"+
					"queries on n1 are timed (p50, p99, max), first at max staleness 0 (each pulls the live n0 and\n"+
					"waits for its answer), then at --max-staleness. Every query must name n2 failed without\n"+
					"waiting the pull timeout for it.",
				"dstatectl bench failedpeer --queries 20000",
				[]ucli.Flag{
					&ucli.IntFlag{Name: "queries", Value: bench.DefaultFailedPeerConfig().Queries, Usage: "queries measured per max staleness"},
					&ucli.DurationFlag{Name: "pull-timeout", Value: bench.DefaultFailedPeerConfig().PullTimeout, Usage: "the state's pull timeout"},
					&ucli.DurationFlag{Name: "max-staleness", Value: bench.DefaultFailedPeerConfig().MaxStaleness, Usage: "max staleness of the second series of queries"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.FailedPeer(ctx, failedPeerConfig(c))
				}),
			benchScenario("watch", "how soon a watcher is told of a change, and what many watchers cost",
				"Three nodes over loopback TCP: n0 mutates a delta state at --rate while n1 records when each\n"+
					"update became visible in its engine (the replication latency), to a watcher (Shard.Watch, every\n"+
					"generation) and to a reader polling the views every --poll-interval. Then --watchers watchers on\n"+
					"n1 follow the same load for --fan-out-for: heap per watcher and CPU, against the load without them.",
				"dstatectl bench watch --watchers 1000",
				[]ucli.Flag{
					&ucli.IntFlag{Name: "mutations", Value: bench.DefaultWatchConfig().Mutations, Usage: "mutations of the latency run"},
					&ucli.Float64Flag{Name: "rate", Value: bench.DefaultWatchConfig().Rate, Usage: "mutations per second"},
					&ucli.DurationFlag{Name: "poll-interval", Value: bench.DefaultWatchConfig().PollInterval, Usage: "interval of the polling reader compared with the watcher"},
					&ucli.IntFlag{Name: "watchers", Value: bench.DefaultWatchConfig().Watchers, Usage: "watchers of the fan-out run (0: none)"},
					&ucli.DurationFlag{Name: "fan-out-for", Value: bench.DefaultWatchConfig().FanOutFor, Usage: "length of the fan-out run"},
				},
				func(ctx context.Context, c *ucli.Context) (*bench.Result, error) {
					return bench.Watch(ctx, watchConfig(c))
				}),
			benchAllCommand(),
		},
		Action: groupAction,
	}
}

// benchFlags are the flags every scenario has.
func benchFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "json", Usage: "also write the results as JSON to `FILE`"},
		&ucli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile of the run to `FILE` (go tool pprof)"},
		&ucli.StringFlag{Name: "trace", Usage: "write an execution trace of the run to `FILE` (go tool trace)"},
		&ucli.StringFlag{Name: "gogc", Usage: "the collector's target for the run, as the GOGC environment variable: a `PERCENT` or off (default: GOGC, else 100)"},
	}
}

type scenarioFunc func(ctx context.Context, c *ucli.Context) (*bench.Result, error)

func benchScenario(name, usage, desc, example string, flags []ucli.Flag, run scenarioFunc) *ucli.Command {
	return &ucli.Command{
		Name:        name,
		Usage:       usage,
		UsageText:   "dstatectl [global options] bench " + name + " [command options]",
		Description: desc + "\n\nExample:\n   " + example,
		Flags:       append(flags, benchFlags()...),
		Action: func(c *ucli.Context) error {
			return runBench(c, func(ctx context.Context) ([]*bench.Result, error) {
				r, err := run(ctx, c)
				if err != nil {
					return nil, err
				}
				return []*bench.Result{r}, nil
			})
		},
	}
}

func benchAllCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "all",
		Usage:     "run every scenario, in full or (--quick) briefly",
		UsageText: "dstatectl [global options] bench all [command options]",
		Description: "Runs latency, throughput, durable, feed, catchup, scale, heal, idle, failedpeer and watch one after the other with\n" +
			"their default sizes (about five minutes on 2 CPUs), or with --quick at reduced sizes (about two minutes).\n\n" +
			"Example:\n" +
			"   dstatectl bench all --quick",
		Flags: append([]ucli.Flag{
			&ucli.BoolFlag{Name: "quick", Usage: "reduced sizes: fewer mutations, shorter runs"},
		}, benchFlags()...),
		Action: func(c *ucli.Context) error {
			return runBench(c, func(ctx context.Context) ([]*bench.Result, error) {
				return runAll(ctx, c.Bool("quick"), c.App.ErrWriter)
			})
		},
	}
}

// runAll runs every scenario; progress goes to progress.
func runAll(ctx context.Context, quick bool, progress interface{ Write([]byte) (int, error) }) ([]*bench.Result, error) {
	lat, thr, dur, feed, cat, sc := bench.DefaultLatencyConfig(), bench.DefaultThroughputConfig(), bench.DefaultDurableConfig(),
		bench.DefaultFeedConfig(), bench.DefaultCatchupConfig(), bench.DefaultScaleConfig()
	heal, idle := bench.DefaultHealConfig(), bench.DefaultIdleConfig()
	failed, watch := bench.DefaultFailedPeerConfig(), bench.DefaultWatchConfig()
	if quick {
		lat.Mutations, lat.Rounds, lat.BaselineUpdates = 20_000, 2, 100
		thr.Duration = 2 * time.Second
		dur.Slice, dur.Rounds = time.Second, 2
		feed.Duration = 5 * time.Second
		cat.Runs = 2
		heal.Runs = 2
		idle.Duration = 10 * time.Second
		failed.Queries = 2_000
		watch.Mutations, watch.FanOutFor = 4_000, time.Second
	}
	steps := []struct {
		name string
		run  func() (*bench.Result, error)
	}{
		{"latency", func() (*bench.Result, error) { return bench.Latency(ctx, lat) }},
		{"throughput", func() (*bench.Result, error) { return bench.Throughput(ctx, thr) }},
		{"durable", func() (*bench.Result, error) { return bench.Durable(ctx, dur) }},
		{"feed", func() (*bench.Result, error) { return bench.Feed(ctx, feed) }},
		{"catchup", func() (*bench.Result, error) { return bench.Catchup(ctx, cat) }},
		{"scale", func() (*bench.Result, error) { return bench.Scale(ctx, sc) }},
		{"heal", func() (*bench.Result, error) { return bench.Heal(ctx, heal) }},
		{"idle", func() (*bench.Result, error) { return bench.Idle(ctx, idle) }},
		{"failedpeer", func() (*bench.Result, error) { return bench.FailedPeer(ctx, failed) }},
		{"watch", func() (*bench.Result, error) { return bench.Watch(ctx, watch) }},
	}
	var out []*bench.Result
	for _, s := range steps {
		fmt.Fprintf(progress, "bench: running %s...\n", s.name)
		r, err := s.run()
		if err != nil {
			return out, fmt.Errorf("%s: %w", s.name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// parseGOGC reads --gogc: a percentage of at least 1, or off (-1).
func parseGOGC(v string) (int, error) {
	if strings.EqualFold(v, "off") {
		return -1, nil
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1 {
		return 0, usageErrorf("bench: --gogc must be a percentage of at least 1 or off, got %q", v)
	}
	return p, nil
}

// runBench runs the scenarios with Ctrl-C handling and the common flags,
// then prints (table or --format json) and writes --json.
func runBench(c *ucli.Context, run func(ctx context.Context) ([]*bench.Result, error)) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, out := range []struct {
		flag  string
		start func(io.Writer) error
		stop  func()
	}{{"cpuprofile", pprof.StartCPUProfile, pprof.StopCPUProfile}, {"trace", trace.Start, trace.Stop}} {
		path := c.String(out.flag)
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer f.Close()
		if err := out.start(f); err != nil {
			return fmt.Errorf("bench: --%s: %w", out.flag, err)
		}
		defer out.stop()
	}
	if v := c.String("gogc"); v != "" {
		p, err := parseGOGC(v)
		if err != nil {
			return err
		}
		defer debug.SetGCPercent(debug.SetGCPercent(p))
	}
	results, runErr := run(ctx)
	cmd := "dstatectl " + strings.Join(os.Args[1:], " ")
	for _, r := range results {
		r.Command = cmd
		if format != formatJSON {
			if err := r.WriteTable(c.App.Writer); err != nil {
				return err
			}
		}
	}
	if format == formatJSON && len(results) > 0 {
		if err := bench.WriteJSON(c.App.Writer, results); err != nil {
			return err
		}
	}
	if path := c.String("json"); path != "" && len(results) > 0 {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		werr := bench.WriteJSON(f, results)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("bench: write %s: %w", path, werr)
		}
	}
	if runErr != nil {
		return fmt.Errorf("bench: %w", runErr)
	}
	return nil
}

func latencyConfig(c *ucli.Context) bench.LatencyConfig {
	return bench.LatencyConfig{Mutations: c.Int("mutations"), Rate: c.Float64("rate"), Rounds: c.Int("rounds"),
		BaselineUpdates: c.Int("baseline-updates"), BaselineRate: c.Float64("baseline-rate"), GossipInterval: c.Duration("gossip-interval")}
}

func throughputConfig(c *ucli.Context) bench.ThroughputConfig {
	return bench.ThroughputConfig{Duration: c.Duration("duration"), Window: c.Int("window")}
}

func durableConfig(c *ucli.Context) bench.DurableConfig {
	return bench.DurableConfig{Slice: c.Duration("slice"), Rounds: c.Int("rounds"), Concurrency: c.Int("concurrency"),
		PayloadSize: c.Int("payload"), Dir: c.String("dir"), LogStores: splitList(c.String("log-store")), Modes: splitList(c.String("mode")),
		Slices: splitList(c.String("slices"))}
}

func feedConfig(c *ucli.Context) bench.FeedConfig {
	return bench.FeedConfig{States: c.Int("states"), Rate: c.Float64("rate"), Duration: c.Duration("duration"),
		BatchInterval: c.Duration("batch-interval"), Keys: c.Int("keys")}
}

func catchupConfig(c *ucli.Context) bench.CatchupConfig {
	return bench.CatchupConfig{Nodes: c.Int("nodes"), Entries: c.Int("entries"), Runs: c.Int("runs"), MaxFrameSize: c.Int("max-frame"),
		KeyBytes: c.Int("key-bytes"), Heap: c.Bool("heap")}
}

func healConfig(c *ucli.Context) bench.HealConfig {
	return bench.HealConfig{Nodes: c.Int("nodes"), Entries: c.Int("entries"), Runs: c.Int("runs"), FullSync: c.Duration("full-sync")}
}

func idleConfig(c *ucli.Context) bench.IdleConfig {
	return bench.IdleConfig{Nodes: c.Int("nodes"), Entries: c.Int("entries"), Duration: c.Duration("duration"), FullSync: c.Duration("full-sync")}
}

func watchConfig(c *ucli.Context) bench.WatchConfig {
	return bench.WatchConfig{Mutations: c.Int("mutations"), Rate: c.Float64("rate"), PollInterval: c.Duration("poll-interval"),
		Watchers: c.Int("watchers"), FanOutFor: c.Duration("fan-out-for")}
}

func failedPeerConfig(c *ucli.Context) bench.FailedPeerConfig {
	return bench.FailedPeerConfig{Queries: c.Int("queries"), PullTimeout: c.Duration("pull-timeout"), MaxStaleness: c.Duration("max-staleness")}
}

func scaleConfig(c *ucli.Context) bench.ScaleConfig {
	return bench.ScaleConfig{Nodes: c.Int("nodes"), States: c.Int("states")}
}
