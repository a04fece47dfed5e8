package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dstate-go/dstate/pkg/agent"
)

// scaleSize shapes TestScale: the full size under E2E_FULL (make e2e),
// a short one in make test.
type scaleSize struct {
	servers, clients int
	// idle and load are the windows over which traffic is measured.
	idle, load time.Duration
	// rate is the kv writes per second spread over every agent during the
	// load window; restartRate the same during the rolling restart.
	rate, restartRate int
}

func scaleSizeFor() scaleSize {
	if full() {
		return scaleSize{servers: 3, clients: 22, idle: 10 * time.Second, load: 15 * time.Second, rate: 1000, restartRate: 250}
	}
	return scaleSize{servers: 3, clients: 4, idle: 2 * time.Second, load: 3 * time.Second, rate: 200, restartRate: 100}
}

// figure logs a measured quantity other than a duration and appends it to
// E2E_RESULTS, as measured does for durations.
func figure(t testing.TB, what string, v float64, unit string) {
	t.Helper()
	t.Logf("MEASURED %s: %.1f %s", what, v, unit)
	appendResult(t, map[string]any{"test": t.Name(), "what": what, "value": v, "unit": unit})
}

// spread returns the minimum, median and maximum of vs.
func spread(vs []float64) (lo, mid, hi float64) {
	if len(vs) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

// figures reports the minimum, median and maximum of vs.
func figures(t testing.TB, what string, vs []float64, unit string) {
	t.Helper()
	lo, mid, hi := spread(vs)
	figure(t, what+" (min)", lo, unit)
	figure(t, what+" (median)", mid, unit)
	figure(t, what+" (max)", hi, unit)
}

// keepAliveClient is an admin API client of nd that reuses its
// connections: a load of hundreds of writes per second through the
// harness's one-connection-per-request client would leave tens of
// thousands of sockets in TIME_WAIT.
func keepAliveClient(nd *node) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	return &apiClient{base: "http://" + nd.httpAddr(), hc: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
}

// rssMiB returns each agent's resident memory in MiB, from its /metrics.
func rssMiB(t testing.TB, nodes []*node) []float64 {
	t.Helper()
	out := make([]float64, 0, len(nodes))
	for _, nd := range nodes {
		m, err := scrape(nd)
		if err != nil {
			t.Fatal(err)
		}
		rss, ok := m["process_resident_memory_bytes"]
		if !ok {
			t.Fatalf("%s's /metrics has no process_resident_memory_bytes", nd.id)
		}
		out = append(out, rss/(1<<20))
	}
	return out
}

// transportBytes returns each agent's state transport bytes sent and
// received so far.
func transportBytes(t testing.TB, nodes []*node) (sent, received []float64) {
	t.Helper()
	for _, nd := range nodes {
		m, err := scrape(nd)
		if err != nil {
			t.Fatal(err)
		}
		out, ok1 := m[`dstate_transport_sent_bytes_total`]
		in, ok2 := m[`dstate_transport_received_bytes_total`]
		if !ok1 || !ok2 {
			t.Fatalf("%s's /metrics has no dstate_transport_sent_bytes_total/received_bytes_total", nd.id)
		}
		sent = append(sent, out)
		received = append(received, in)
	}
	return sent, received
}

// measureTraffic measures every agent's state transport bytes per second
// over window and reports them as figures named after phase. During the
// window the agents run on their own (or under the test's load): the wait
// is the measurement period, not a synchronization.
func measureTraffic(t testing.TB, nodes []*node, servers int, phase string, window time.Duration) {
	t.Helper()
	sent0, recv0 := transportBytes(t, nodes)
	start := time.Now()
	<-time.After(window)
	sent1, recv1 := transportBytes(t, nodes)
	secs := time.Since(start).Seconds()
	var srv, cli []float64
	var total float64
	for i := range nodes {
		rate := (sent1[i] - sent0[i] + recv1[i] - recv0[i]) / secs
		total += sent1[i] - sent0[i]
		if i < servers {
			srv = append(srv, rate)
		} else {
			cli = append(cli, rate)
		}
	}
	figures(t, phase+": state transport bytes/s per server agent (sent + received)", srv, "B/s")
	figures(t, phase+": state transport bytes/s per client agent (sent + received)", cli, "B/s")
	figure(t, phase+": state transport bytes/s sent by the whole cluster", total/secs, "B/s")
}

// kvLoad writes kv keys on every agent at a total rate per second until
// stopped; it remembers each key's last acknowledged value ("?" once a
// write's outcome is unknown) so that no acknowledged write can be lost
// unnoticed.
type kvLoad struct {
	mu    sync.Mutex
	last  map[[2]string]string // node, key → value
	acked atomic.Int64
	other atomic.Int64 // refused or failed
	lat   []float64    // acknowledged writes' latencies in ms, under mu
}

// latencies returns the latencies recorded since the last call.
func (l *kvLoad) latencies() []float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lat
	l.lat = nil
	return out
}

func newKVLoad() *kvLoad { return &kvLoad{last: map[[2]string]string{}} }

// run starts, for each of ten keys of every node's own map, a writer
// that writes it in turn, rate/(10·len(nodes)) times per second, until ctx
// ends; wg tracks them. Each key has one writer, so its last acknowledged
// write is well defined, and a slow write holds up only its own key. It
// returns the period of one key's writes: after one period every writer
// runs.
func (l *kvLoad) run(ctx context.Context, wg *sync.WaitGroup, nodes []*node, rate int) time.Duration {
	const keys = 10
	every := time.Duration(float64(time.Second) * float64(keys*len(nodes)) / float64(rate))
	for _, nd := range nodes {
		api := keepAliveClient(nd)
		api.hc.Transport.(*http.Transport).MaxIdleConnsPerHost = keys
		for i := range keys {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer api.hc.CloseIdleConnections()
				k := [2]string{nd.id, fmt.Sprintf("k%d", i)}
				// Start the keys' writers spread over one period.
				select {
				case <-ctx.Done():
					return
				case <-time.After(every * time.Duration(i) / keys):
				}
				tick := time.NewTicker(every)
				defer tick.Stop()
				for seq := 0; ; seq++ {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					value := fmt.Sprintf("%s-%d-%d", nd.id, i, seq)
					wctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
					call := time.Now()
					_, err := api.put(wctx, agent.KVState, k[1], value)
					took := time.Since(call)
					cancel()
					l.mu.Lock()
					switch {
					case err == nil:
						l.last[k] = value
						l.acked.Add(1)
						l.lat = append(l.lat, float64(took.Microseconds())/1000)
					case refused(err):
						l.other.Add(1)
					default:
						l.last[k] = "?"
						l.other.Add(1)
					}
					l.mu.Unlock()
				}
			}()
		}
	}
	return every
}

// check verifies that every key holds its last acknowledged value (keys
// whose last write had an unknown outcome are skipped) and returns how many
// keys it checked.
func (l *kvLoad) check(t testing.TB, c *cluster) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	checked := 0
	for k, want := range l.last {
		if want == "?" {
			continue
		}
		got, _, err := kvValue(c.node(k[0]), agent.KVState, k[0], k[1])
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("kv: %s's %s = %q, last acknowledged write %q", k[0], k[1], got, want)
		}
		checked++
	}
	return checked
}

// durableLoad writes each server's durable-kv register "r" with unique
// values and reads linearizable dumps from random servers, recording the
// history for porcupine.
func durableLoad(ctx context.Context, wg *sync.WaitGroup, h *history, servers []*node, seed int64) {
	regs := ids(servers)
	pace := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	for i, nd := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				value := fmt.Sprintf("%s-%d", nd.id, seq)
				call := h.now()
				// A generous timeout: every write that times out has an
				// unknown outcome, and each one multiplies the histories
				// porcupine has to try.
				wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := nd.api.put(wctx, agent.DurableKVState, "r", value)
				cancel()
				switch {
				case err == nil:
					h.write(i, nd.id, value, call, true)
				case refused(err) || notReady(err):
					h.notApplied()
				default:
					h.write(i, nd.id, value, call, false)
				}
				pace(time.Duration(20+rand.IntN(60)) * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(uint64(seed), 2))
		for ctx.Err() == nil {
			_ = linearizableRead(h, len(servers), servers[r.IntN(len(servers))], regs, 3*time.Second)
			pace(100 * time.Millisecond)
		}
	}()
}

// linearizableRead records one linearizable durable-kv dump from nd as a
// read of every register in regs.
func linearizableRead(h *history, client int, nd *node, regs []string, timeout time.Duration) error {
	call := h.now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d agent.StateDump
	if err := nd.api.get(ctx, "/v1/states/"+agent.DurableKVState, url.Values{"consistent": {"true"}}, &d); err != nil {
		return err
	}
	values := map[string]string{}
	for _, v := range d.Views {
		m, _ := v.Value.(map[string]any)
		values[v.Node], _ = m["r"].(string)
	}
	h.read(client, values, regs, call)
	return nil
}

// waitRejoined waits until every other node reports the restarted nd
// alive. A node that still reports it "leaving" holds a leave intent of its
// previous run that outranked its rejoin: the status does not recover by
// itself while nd runs.
func waitRejoined(t testing.TB, c *cluster, nd *node, timeout time.Duration) {
	t.Helper()
	eventually(t, fmt.Sprintf("every agent reports the restarted %s alive", nd.id), timeout, func() (bool, string) {
		for _, o := range without(c.nodes, nd) {
			ms, err := o.api.members()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", o.id, err)
			}
			switch st := memberStatus(ms, nd.id); st {
			case "alive":
			case "leaving":
				return false, fmt.Sprintf("%s reports the restarted %s %q: the leave intent of its previous run outranks its rejoin (serf keeps that status while the node runs)", o.id, nd.id, st)
			default:
				return false, fmt.Sprintf("%s reports %s %q", o.id, nd.id, st)
			}
		}
		return true, ""
	})
}

// checkMarkers fails unless holder holds, in state, each owner's
// "before-restart" key at the value markers names for it.
func checkMarkers(t testing.TB, holder *node, state string, owners []*node, markers map[string]string) {
	t.Helper()
	vs, err := views(holder, state)
	if err != nil {
		t.Fatal(err)
	}
	for _, owner := range owners {
		want, ok := markers[owner.id]
		if !ok {
			continue
		}
		m, _ := vs[owner.id].Value.(map[string]any)
		if got, _ := m["before-restart"].(string); got != want {
			t.Errorf("%s: %s holds %s's before-restart = %q; the write acknowledged before its restart was %q", state, holder.id, owner.id, got, want)
		}
	}
}

// TestScale runs 25 agents on one machine (E2E_FULL; 7 in make test):
// 3 Raft servers and 22 clients (--server=false). It measures how long the
// cluster takes to form, how long one write takes to be visible on every
// agent, each agent's resident memory, and each agent's state transport
// traffic when idle and under 1,000 kv writes per second spread over every
// agent (200 in make test). Then every agent is restarted in turn, the
// clients first and the Raft leader last, gracefully (SIGTERM, then a
// start from its data dir), while kv writes continue on
// every agent and durable writes and linearizable reads on the servers.
// Afterwards everything converges; the write each agent acknowledged just
// before its stop (kv, and durable-kv on servers) is held by every agent;
// every kv key holds its last acknowledged value; and the durable history
// is linearizable (porcupine): no acknowledged durable write was lost.
func TestScale(t *testing.T) {
	sz := scaleSizeFor()
	n := sz.servers + sz.clients
	seed := seedFor(t)
	c := newCluster(t, n, clusterOpts{bootstrapExpect: sz.servers, noStart: true, extra: func(i int) []string {
		if i < sz.servers {
			return nil
		}
		return []string{"--server=false", "--bootstrap-expect", "0"}
	}})
	servers, clients := c.nodes[:sz.servers], c.nodes[sz.servers:]
	t.Logf("%d agents: servers %v, clients %v", n, ids(servers), ids(clients))

	// Formation: every agent started at once.
	start := time.Now()
	for _, nd := range c.nodes {
		c.launch(nd)
	}
	for _, nd := range c.nodes {
		eventually(t, nd.id+" serves its admin API", 60*time.Second, func() (bool, string) {
			if !nd.running() {
				t.Fatalf("%s exited right after start (see %s)", nd.id, nd.logPath)
			}
			return c.serving(nd)
		})
	}
	measured(t, fmt.Sprintf("%d agents: start → every admin API serving", n), time.Since(start))
	c.waitMembers(c.nodes, allAlive(c.nodes), 120*time.Second)
	measured(t, fmt.Sprintf("%d agents: start → every agent reports all %d members alive", n, n), time.Since(start))
	leader := c.node(c.waitLeader(servers, 120*time.Second))
	c.waitReady(servers, 120*time.Second)
	measured(t, fmt.Sprintf("%d agents: start → Raft leader elected and durable-kv ready on the %d servers", n, sz.servers), time.Since(start))
	for _, nd := range clients {
		st, err := nd.api.raft()
		if err != nil {
			t.Fatal(err)
		}
		if st.Enabled {
			t.Fatalf("%s runs Raft, but was started with --server=false", nd.id)
		}
	}

	// One write, visible on every agent.
	writer := clients[len(clients)-1]
	start = time.Now()
	c.mustPut(writer, agent.KVState, "hello", "scale")
	c.waitValue(c.nodes, agent.KVState, writer, "hello", "scale", 60*time.Second)
	measured(t, fmt.Sprintf("%d agents: a kv write on %s → visible on every agent", n, writer.id), time.Since(start))
	start = time.Now()
	c.durableWrite(servers, "hello")
	for _, owner := range servers {
		c.waitValue(servers, agent.DurableKVState, owner, "hello", owner.id+"-hello", 60*time.Second)
	}
	measured(t, fmt.Sprintf("%d agents: a durable-kv write on each server → visible on every server", n), time.Since(start))
	c.waitConverged(c.nodes, 60*time.Second, agent.KVState)

	// Memory and idle traffic.
	rss := rssMiB(t, c.nodes)
	figures(t, fmt.Sprintf("%d agents, idle: resident memory per agent", n), rss, "MiB")
	measureTraffic(t, c.nodes, sz.servers, fmt.Sprintf("%d agents, idle", n), sz.idle)

	// Traffic under kv writes spread over every agent.
	load := newKVLoad()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	warmup := load.run(ctx, &wg, c.nodes, sz.rate)
	<-time.After(warmup) // until every writer runs: the measurement starts at full load
	before := load.acked.Load()
	load.latencies()
	loadStart := time.Now()
	measureTraffic(t, c.nodes, sz.servers, fmt.Sprintf("%d agents, %d kv writes/s", n, sz.rate), sz.load)
	done := load.acked.Load() - before
	figure(t, fmt.Sprintf("%d agents: kv writes acknowledged per second (target %d)", n, sz.rate), float64(done)/time.Since(loadStart).Seconds(), "writes/s")
	figures(t, fmt.Sprintf("%d agents, %d kv writes/s: kv write latency (PUT /v1/kv, fsynced)", n, sz.rate), load.latencies(), "ms")
	figures(t, fmt.Sprintf("%d agents, %d kv writes/s: resident memory per agent", n, sz.rate), rssMiB(t, c.nodes), "MiB")
	cancel()
	wg.Wait()
	if done == 0 {
		t.Fatal("no kv write was acknowledged during the load window")
	}

	// Rolling restart under write load.
	h := newHistory()
	ctx, cancel = context.WithCancel(context.Background())
	stopLoad := func() { cancel(); wg.Wait() }
	defer stopLoad()
	load.run(ctx, &wg, c.nodes, sz.restartRate)
	durableLoad(ctx, &wg, h, servers, seed)

	order := slices.Clone(clients)
	for _, nd := range servers {
		if nd != leader {
			order = append(order, nd)
		}
	}
	order = append(order, leader) // the leader last: one leadership change
	var took []float64
	rollStart := time.Now()
	markers := map[string]string{} // node → the value of its kv and durable-kv key "before-restart"
	for _, nd := range order {
		// A write acknowledged just before the stop, never overwritten:
		// after every restart it must still be there, everywhere.
		markers[nd.id] = fmt.Sprintf("%s-start-%d", nd.id, nd.starts)
		c.mustPut(nd, agent.KVState, "before-restart", markers[nd.id])
		if slices.Contains(servers, nd) {
			c.mustPut(nd, agent.DurableKVState, "before-restart", markers[nd.id])
		}
		one := time.Now()
		c.terminate(nd, 60*time.Second)
		c.start(nd)
		c.waitMembers([]*node{nd}, allAlive(c.nodes), 60*time.Second)
		waitRejoined(t, c, nd, 60*time.Second)
		if slices.Contains(servers, nd) {
			eventually(t, nd.id+" is a voter again", 60*time.Second, func() (bool, string) {
				got, err := raftServers(nd)
				if err != nil {
					return false, err.Error()
				}
				return slices.Equal(got, ids(servers)), fmt.Sprintf("configuration %v", got)
			})
			c.waitLeader(servers, 60*time.Second)
			c.waitReady([]*node{nd}, 60*time.Second)
		}
		took = append(took, time.Since(one).Seconds())
		t.Logf("rolling restart: %s back after %s", nd.id, time.Since(one).Round(time.Millisecond))
	}
	measured(t, fmt.Sprintf("%d agents: rolling restart of %d agents under load, whole", n, len(order)), time.Since(rollStart))
	lo, mid, hi := spread(took)
	measured(t, fmt.Sprintf("%d agents: rolling restart, one agent SIGTERM → back (min)", n), time.Duration(lo*float64(time.Second)))
	measured(t, fmt.Sprintf("%d agents: rolling restart, one agent SIGTERM → back (median)", n), time.Duration(mid*float64(time.Second)))
	measured(t, fmt.Sprintf("%d agents: rolling restart, one agent SIGTERM → back (max)", n), time.Duration(hi*float64(time.Second)))
	stopLoad()
	t.Logf("rolling restart: kv writes %d acknowledged, %d refused or failed; durable: %s", load.acked.Load(), load.other.Load(), h)

	// Everything converges; nothing acknowledged is lost.
	ended := time.Now()
	c.waitMembers(c.nodes, allAlive(c.nodes), 120*time.Second)
	c.waitLeader(servers, 120*time.Second)
	c.waitReady(servers, 120*time.Second)
	c.waitConverged(c.nodes, 120*time.Second, agent.KVState)
	c.waitConverged(servers, 120*time.Second, agent.DurableKVState)
	measured(t, fmt.Sprintf("%d agents: load stopped after the rolling restart → converged", n), time.Since(ended))

	for _, holder := range c.nodes {
		checkMarkers(t, holder, agent.KVState, c.nodes, markers)
		if slices.Contains(servers, holder) {
			checkMarkers(t, holder, agent.DurableKVState, servers, markers)
		}
	}
	checked := load.check(t, c)
	t.Logf("kv: %d keys hold their last acknowledged value", checked)
	if checked == 0 {
		t.Fatal("kv: no key had an acknowledged last write to check")
	}
	eventually(t, "a final linearizable dump", 30*time.Second, func() (bool, string) {
		err := linearizableRead(h, len(servers), servers[0], ids(servers), 5*time.Second)
		return err == nil, fmt.Sprint(err)
	})
	ops := h.snapshot()
	var acked, reads int
	for _, op := range ops {
		switch {
		case !op.Input.(regInput).Write:
			reads++
		case op.Return != math.MaxInt64:
			acked++
		}
	}
	if acked == 0 || reads == 0 {
		t.Fatalf("the durable history holds %d acknowledged writes and %d reads: nothing to check", acked, reads)
	}
	t0 := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, 5*time.Minute)
	t.Logf("porcupine: %s over %d operations (%d acknowledged writes, %d register reads) in %s", res, len(ops), acked, reads, time.Since(t0).Round(time.Millisecond))
	if res != porcupine.Ok {
		path := filepath.Join(c.root, "history.html")
		if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
			t.Logf("visualization: %v", err)
		}
		t.Fatalf("the durable history is %s (not linearizable or not decided): an acknowledged durable write was lost or a read went back; visualization in %s", res, path)
	}
}
