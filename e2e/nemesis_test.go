package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dstate-go/dstate/pkg/agent"
)

// nemesisLiveness bounds, as one deadline, the whole recovery after the
// nemesis stops (every node resumed, restarted and healed → members alive,
// a Raft leader, durable-kv ready everywhere, kv and durable-kv views
// converged). It is a generous liveness timeout, not a claim: the measured
// duration is the figure (e2e/RESULTS.md).
const nemesisLiveness = 2 * time.Minute

// fault is one kind of failure the nemesis injects. A new kind (a network
// fault, say) joins the schedule by implementing fault and being added to
// the list newNemesis builds (or to nemesis.faults before the run).
type fault interface {
	// kind names the fault in the log and the figures ("kill", "pause").
	kind() string
	// inject starts the fault now if it applies; ok is false, and
	// nothing was done, when it does not (no eligible node, the budget of
	// unavailable nodes spent, the fault already in effect).
	inject(n *nemesis) (a *activeFault, ok bool)
}

// activeFault is a fault in effect until the nemesis heals it.
type activeFault struct {
	kind string
	desc string
	// takes are the nodes the fault makes unavailable (killed, paused,
	// cut off in a minority), counted against the nemesis's maxDown.
	takes []*node
	// heal ends the fault (restarts, resumes, reconnects).
	heal func()
}

// nemesis injects and heals faults on a seeded schedule.
type nemesis struct {
	t       *testing.T
	c       *cluster
	r       *rand.Rand
	start   time.Time
	maxDown int
	faults  []fault
	active  []*activeFault
	// isolated is the node whose state replication the isolate fault cuts.
	isolated *node
	// net cuts, thins and delays the links between the nodes (nil where
	// the test cannot build a network lab); netBusy is true while a
	// network fault is in effect (one at a time: each sets every rule).
	net     netControl
	netBusy bool
	// onResume is called right after a paused node resumes (the test
	// reads from it at once: a deposed leader must not serve stale data).
	onResume func(*node)
	// heals counts the faults healed so far; a durable writer whose
	// write had an unknown outcome waits for the next heal.
	heals *atomic.Int64

	// figures
	events   int
	injected map[string]int
	healed   int
	// deposed counts paused leaders replaced by a new leader before they
	// resumed; wokeAsLeader those that, just resumed, still reported
	// themselves leader of their old term.
	deposed, wokeAsLeader int
}

func newNemesis(t *testing.T, c *cluster, net netControl, seed int64, maxDown int) *nemesis {
	n := &nemesis{t: t, c: c, net: net, r: rand.New(rand.NewPCG(uint64(seed), 0)), start: time.Now(), maxDown: maxDown, injected: map[string]int{}}
	n.faults = []fault{killFault{}, isolateFault{}}
	if canPause {
		n.faults = append(n.faults, pauseFault{})
	}
	if net != nil {
		n.faults = append(n.faults, partitionFault{}, oneWayFault{}, lossFault{})
		if net.canDelay() {
			n.faults = append(n.faults, delayFault{})
		}
	}
	return n
}

func (n *nemesis) logf(format string, args ...any) {
	n.t.Logf("nemesis +%5.1fs: %s", time.Since(n.start).Seconds(), fmt.Sprintf(format, args...))
}

// taken returns the nodes a fault in effect makes unavailable.
func (n *nemesis) taken() []*node {
	var out []*node
	for _, a := range n.active {
		out = append(out, a.takes...)
	}
	return out
}

// available returns the running nodes no fault takes.
func (n *nemesis) available() []*node {
	taken := n.taken()
	var out []*node
	for _, nd := range n.c.live() {
		if !slices.Contains(taken, nd) {
			out = append(out, nd)
		}
	}
	return out
}

// budget reports whether one more node may be made unavailable.
func (n *nemesis) budget() bool { return n.spare() > 0 }

// spare returns how many more nodes may be made unavailable.
func (n *nemesis) spare() int { return n.maxDown - len(n.taken()) }

func (n *nemesis) pick(nodes []*node) *node { return nodes[n.r.IntN(len(nodes))] }

// applyFaults sets nd's drop set for the current isolation.
func (n *nemesis) applyFaults(nd *node) {
	var drop []string
	switch {
	case n.isolated == nil:
	case nd == n.isolated:
		for _, o := range n.c.nodes {
			if o != nd {
				drop = append(drop, o.id)
			}
		}
	default:
		drop = []string{n.isolated.id}
	}
	if err := nd.api.setFaults(drop); err != nil {
		n.logf("faults on %s: %v", nd.id, err)
	}
}

// inject starts f if it applies and reports whether it did.
func (n *nemesis) inject(f fault) bool {
	a, ok := f.inject(n)
	if !ok {
		return false
	}
	n.active = append(n.active, a)
	n.injected[a.kind]++
	n.logf("%s", a.desc)
	return true
}

// heal ends the i'th fault in effect.
func (n *nemesis) heal(i int) {
	a := n.active[i]
	n.active = slices.Delete(n.active, i, i+1)
	n.logf("heal: %s", a.desc)
	a.heal()
	n.healed++
	if n.heals != nil {
		n.heals.Add(1)
	}
}

// step performs one action of the schedule. While first is not empty the
// schedule makes sure every kind is drawn: it heals what is in effect, then
// injects first's next kind; afterwards it heals a random fault in effect
// or injects a random kind that applies.
func (n *nemesis) step(first *[]fault) {
	n.events++
	if len(*first) > 0 {
		if len(n.active) > 0 {
			n.heal(len(n.active) - 1)
			return
		}
		f := (*first)[0]
		*first = (*first)[1:]
		if n.inject(f) {
			return
		}
		n.logf("%s does not apply now", f.kind())
	}
	if len(n.active) > 0 && n.r.IntN(2) == 0 {
		n.heal(n.r.IntN(len(n.active)))
		return
	}
	for _, i := range n.r.Perm(len(n.faults)) {
		if n.inject(n.faults[i]) {
			return
		}
	}
	if len(n.active) > 0 {
		n.heal(n.r.IntN(len(n.active)))
	}
}

// healAll ends every fault in effect, the latest first.
func (n *nemesis) healAll() {
	for len(n.active) > 0 {
		n.heal(len(n.active) - 1)
	}
}

// killFault SIGKILLs a node; healing restarts it from its data dir.
type killFault struct{}

func (killFault) kind() string { return "kill" }

func (killFault) inject(n *nemesis) (*activeFault, bool) {
	cands := n.available()
	if !n.budget() || len(cands) == 0 {
		return nil, false
	}
	nd := n.pick(cands)
	n.c.kill(nd)
	return &activeFault{kind: "kill", desc: "SIGKILL " + nd.id, takes: []*node{nd}, heal: func() {
		n.c.start(nd)
		n.applyFaults(nd)
	}}, true
}

// isolateFault cuts one node's state replication (the agents' test fault
// hook drops state frames to and from it; gossip and Raft still flow).
type isolateFault struct{}

func (isolateFault) kind() string { return "isolate" }

func (isolateFault) inject(n *nemesis) (*activeFault, bool) {
	if n.isolated != nil {
		return nil, false
	}
	nd := n.pick(n.c.nodes)
	n.isolated = nd
	for _, o := range n.available() {
		n.applyFaults(o)
	}
	return &activeFault{kind: "isolate", desc: "isolate " + nd.id + "'s state replication", heal: func() {
		n.isolated = nil
		for _, o := range n.available() {
			n.applyFaults(o)
		}
	}}, true
}

// pauseFault stops the Raft leader (or, without one, a random node) with
// SIGSTOP. Healing waits until the others have elected a new leader, then
// resumes it with SIGCONT: a deposed leader wakes up believing it leads.
type pauseFault struct{}

func (pauseFault) kind() string { return "pause" }

func (pauseFault) inject(n *nemesis) (*activeFault, bool) {
	cands := n.available()
	if !n.budget() || len(cands) == 0 {
		return nil, false
	}
	nd, term := n.leaderOf(cands)
	wasLeader := nd != nil
	if !wasLeader {
		nd = n.pick(cands)
	}
	nd.mu.Lock()
	p := nd.cmd.Process
	nd.mu.Unlock()
	paused := time.Now()
	if err := pauseProcess(p); err != nil {
		n.t.Fatalf("pause %s: %v", nd.id, err)
	}
	desc := "SIGSTOP " + nd.id
	if wasLeader {
		desc = fmt.Sprintf("SIGSTOP %s, the Raft leader of term %d", nd.id, term)
	}
	return &activeFault{kind: "pause", desc: desc, takes: []*node{nd}, heal: func() { n.resume(nd, p, paused, wasLeader, term) }}, true
}

// leaderOf returns the node of nodes that reports itself Raft leader, and
// its term, polling for up to 10 s (nil when none does by then: an
// election under way or a leader elsewhere).
func (n *nemesis) leaderOf(nodes []*node) (*node, uint64) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, nd := range nodes {
			st, err := raftStatus(nd, 2*time.Second)
			if err == nil && st.State == "Leader" {
				return nd, st.Term
			}
		}
		if time.Now().After(deadline) {
			return nil, 0
		}
		<-time.After(50 * time.Millisecond) // poll interval
	}
}

// resume continues the paused nd. A paused leader is resumed once another
// node reports a new leader of a later term, so it wakes up deposed.
func (n *nemesis) resume(nd *node, p *os.Process, paused time.Time, wasLeader bool, term uint64) {
	if wasLeader {
		others := slices.DeleteFunc(n.available(), func(o *node) bool { return o == nd })
		var by string
		// A liveness timeout, not a bound: on a loaded machine the two
		// survivors of a 3-node cluster can win and lose several elections
		// (--fast's 100 ms leader lease) before one holds; the time taken
		// is logged.
		eventually(n.t, fmt.Sprintf("a new Raft leader replaces the paused %s (term %d)", nd.id, term), 2*time.Minute, func() (bool, string) {
			for _, o := range others {
				st, err := raftStatus(o, 2*time.Second)
				if err == nil && st.Leader != "" && st.Leader != nd.id && st.Term > term {
					by = fmt.Sprintf("%s (term %d)", st.Leader, st.Term)
					return true, ""
				}
			}
			return false, fmt.Sprintf("no leader other than %s among %v", nd.id, ids(others))
		})
		n.deposed++
		d := time.Since(paused)
		n.logf("%s was deposed: new leader %s, %s after the pause", nd.id, by, d.Round(time.Millisecond))
		measured(n.t, "SIGSTOP on the Raft leader → the others report a new leader of a later term", d)
	}
	if err := resumeProcess(p); err != nil {
		n.t.Fatalf("resume %s: %v", nd.id, err)
	}
	if wasLeader {
		if st, err := raftStatus(nd, 2*time.Second); err == nil {
			if st.State == "Leader" && st.Term == term {
				n.wokeAsLeader++
			}
			n.logf("%s resumed as %s of term %d", nd.id, st.State, st.Term)
		}
	}
	n.applyFaults(nd)
	if n.onResume != nil {
		n.onResume(nd)
	}
}

// raftStatus returns nd's Raft status, giving up after timeout.
func raftStatus(nd *node, timeout time.Duration) (agent.RaftStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var st agent.RaftStatus
	err := nd.api.get(ctx, "/v1/raft", nil, &st)
	return st, err
}

// TestNemesis: for E2E_NEMESIS (10 s by default, 60 s in make e2e) a
// seeded schedule kills and restarts random nodes, pauses the Raft leader
// (SIGSTOP; it is resumed with SIGCONT once deposed, and read from at
// once) and isolates a node's state replication, every 0.3–1.5 s, drawing
// every kind at least once, while clients write kv and durable-kv on every
// node and read linearizable dumps. Where the test can build a network lab
// (Linux, root, iproute2, nftables) every agent runs in a network
// namespace of its own and the schedule also draws real network faults,
// which cut gossip, Raft and the state transport together: a minority
// partition (half the time holding the Raft leader), a one-way partition,
// 10 % or 30 % packet loss and 15 ms ± 10 ms delay; elsewhere it logs why
// it draws none. Afterwards everything converges (the
// duration is measured), every kv and durable-kv key holds a value one of
// its writes could have produced (the last acknowledged one, or one of
// unknown outcome), and the durable history is linearizable (porcupine).
// The run fails unless writes were acknowledged, every key was checked and
// every fault kind happened.
func TestNemesis(t *testing.T) {
	size := 3
	if full() {
		size = 5
	}
	dur := nemesisDuration(t)
	seed := seedFor(t)
	c, net, why := nemesisCluster(t, size)
	if net == nil {
		t.Logf("the nemesis draws no network fault: %s", why)
	}
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.waitLeader(c.nodes, 30*time.Second)
	c.waitReady(c.nodes, 30*time.Second)
	regs := ids(c.nodes)

	h := newHistory()
	writes := newWriteLog()
	// A write of unknown outcome stays open to the end of the durable
	// history; its writer waits for the next heal before writing again, so
	// that a few per fault keep the linearizability check tractable.
	var heals atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	// pace waits d or until the clients stop; it paces the load, it
	// synchronizes nothing.
	pace := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	for i, nd := range c.nodes {
		// Durable writer: the register "r" of its node, unique values.
		wg.Add(1)
		go func() {
			defer wg.Done()
			blocked := int64(-1)
			for seq := 0; ctx.Err() == nil; seq++ {
				if blocked == heals.Load() {
					pace(50 * time.Millisecond)
					continue
				}
				value := fmt.Sprintf("%s-%d", nd.id, seq)
				call := h.now()
				wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := nd.api.put(wctx, agent.DurableKVState, "r", value)
				wcancel()
				key := durableKey(nd.id)
				switch {
				case err == nil:
					h.write(i, nd.id, value, call, true)
					writes.record(key, value, acked)
				case refused(err) || notReady(err):
					h.notApplied()
					writes.record(key, value, notApplied)
				default:
					h.write(i, nd.id, value, call, false)
					writes.record(key, value, unknown)
					blocked = heals.Load()
				}
				pace(time.Duration(20+rand.IntN(60)) * time.Millisecond)
			}
		}()
		// kv writer: four keys of its node's Local-durable map.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				k := fmt.Sprintf("k%d", seq%4)
				value := fmt.Sprintf("%s-%d", nd.id, seq)
				wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := nd.api.put(wctx, agent.KVState, k, value)
				wcancel()
				switch {
				case err == nil:
					writes.record(kvKey(nd.id, k), value, acked)
				case refused(err):
					writes.record(kvKey(nd.id, k), value, notApplied)
				default:
					writes.record(kvKey(nd.id, k), value, unknown)
				}
				pace(time.Duration(50+rand.IntN(100)) * time.Millisecond)
			}
		}()
	}
	// Readers: linearizable dumps from random nodes, and from each paused
	// node right after it resumes.
	readOnce := func(nd *node, client int, timeout time.Duration) (map[string]string, error) {
		call := h.now()
		rctx, rcancel := context.WithTimeout(context.Background(), timeout)
		defer rcancel()
		var d agent.StateDump
		if err := nd.api.get(rctx, "/v1/states/"+agent.DurableKVState, url.Values{"consistent": {"true"}}, &d); err != nil {
			return nil, err
		}
		values := map[string]string{}
		for _, v := range d.Views {
			m, _ := v.Value.(map[string]any)
			values[v.Node], _ = m["r"].(string)
		}
		h.read(client, values, regs, call)
		return values, nil
	}
	reader, resumeReader := len(c.nodes), len(c.nodes)+1
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(uint64(seed), 1))
		for ctx.Err() == nil {
			_, _ = readOnce(c.nodes[r.IntN(len(c.nodes))], reader, 3*time.Second)
			pace(100 * time.Millisecond)
		}
	}()
	stopClients := func() { cancel(); wg.Wait() }
	defer stopClients()

	nem := newNemesis(t, c, net, seed, (size-1)/2)
	nem.heals = &heals
	nem.logf("faults drawn: %s", nem.faultKinds())
	resumedReads := 0
	nem.onResume = func(nd *node) {
		if _, err := readOnce(nd, resumeReader, 3*time.Second); err != nil {
			nem.logf("linearizable read from the resumed %s: %v", nd.id, err)
			return
		}
		resumedReads++
		nem.logf("linearizable read from the resumed %s answered", nd.id)
	}
	defer nem.healAll() // resume a paused node before the cluster is torn down
	first := slices.Clone(nem.faults)
	nem.r.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) || len(first) > 0 {
		wait := time.Duration(300+nem.r.IntN(1200)) * time.Millisecond
		if rest := time.Until(deadline); wait > rest && len(first) == 0 {
			wait = max(rest, 0)
		}
		<-time.After(wait) // the schedule's interval, not a synchronization
		if time.Now().Before(deadline) || len(first) > 0 {
			nem.step(&first)
		}
	}
	stopClients()
	ran := time.Since(nem.start)

	// Resume, restart and heal everything; measure convergence.
	nem.logf("heal everything")
	ended := time.Now()
	nem.healAll()
	for _, nd := range c.nodes {
		nem.applyFaults(nd)
	}
	recovery := time.Now().Add(nemesisLiveness)
	c.waitMembers(c.nodes, allAlive(c.nodes), time.Until(recovery))
	c.waitLeader(c.nodes, time.Until(recovery))
	c.waitReady(c.nodes, time.Until(recovery))
	c.waitConverged(c.nodes, time.Until(recovery), agent.KVState, agent.DurableKVState)
	measured(t, fmt.Sprintf("nemesis (%d nodes, %s) ended → resumed, restarted, healed, converged", size, dur), time.Since(ended))

	// Every key holds a value one of its writes could have produced.
	checked := 0
	for _, key := range writes.keyNames() {
		owner, k, ok := splitKVKey(key)
		if !ok {
			continue
		}
		got, _, err := kvValue(c.node(owner), agent.KVState, owner, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := writes.check(key, got); err != nil {
			t.Errorf("kv: %v", err)
		}
		checked++
	}

	// A final linearizable read, then the durable checks.
	var final map[string]string
	eventually(t, "a final linearizable dump", 20*time.Second, func() (bool, string) {
		var err error
		final, err = readOnce(c.nodes[0], reader, 5*time.Second)
		return err == nil, fmt.Sprint(err)
	})
	for _, id := range regs {
		if err := writes.check(durableKey(id), final[id]); err != nil {
			t.Errorf("durable-kv: %v", err)
		}
		checked++
	}
	ops := h.snapshot()
	t0 := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, 2*time.Minute)
	t.Logf("porcupine: %s over %d operations in %s", res, len(ops), time.Since(t0).Round(time.Millisecond))
	if res != porcupine.Ok {
		path := filepath.Join(c.root, "history.html")
		if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
			t.Logf("visualization: %v", err)
		}
		t.Fatalf("the durable history is %s (not linearizable or not decided); visualization in %s", res, path)
	}

	// The run was not vacuous.
	kvOK, kvUnknown, kvNot := writes.counts("kv/")
	t.Logf("NEMESIS %d nodes, %s (ran %s), seed %d: %d events: injected %v, %d healed; %d paused leaders deposed, %d woke still believing they led, %d linearizable reads from resumed nodes; "+
		"durable: %s; kv: %d writes acknowledged, %d with unknown outcome, %d certainly not applied; %d keys checked",
		size, dur, ran.Round(100*time.Millisecond), seed, nem.events, nem.injected, nem.healed, nem.deposed, nem.wokeAsLeader, resumedReads,
		h, kvOK, kvUnknown, kvNot, checked)
	if h.acked() == 0 {
		t.Error("no durable write was acknowledged")
	}
	if kvOK == 0 {
		t.Error("no kv write was acknowledged")
	}
	if want := size*4 + size; checked != want {
		t.Errorf("%d keys checked, want %d (4 kv keys and 1 durable register per node)", checked, want)
	}
	if h.readCount() == 0 {
		t.Error("the history holds no linearizable read")
	}
	for _, f := range nem.faults {
		if nem.injected[f.kind()] == 0 {
			t.Errorf("the nemesis never injected %s", f.kind())
		}
	}
	if canPause && nem.deposed == 0 {
		t.Error("no paused Raft leader was deposed")
	}
}

// kvKey and durableKey name keys in the write log.
func kvKey(owner, key string) string { return "kv/" + owner + "/" + key }
func durableKey(owner string) string { return "durable-kv/" + owner + "/r" }

// splitKVKey splits a kvKey.
func splitKVKey(s string) (owner, key string, ok bool) {
	rest, ok := strings.CutPrefix(s, "kv/")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, "/")
}
