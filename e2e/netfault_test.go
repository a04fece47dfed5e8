//go:build linux

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
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

// netBound is the liveness timeout of every wait after a network fault
// heals (members alive, one leader, views converged); the durations are
// measured and reported, not compared with it.
func netBound() time.Duration {
	if full() {
		return 3 * time.Minute // default timers: serf reconnects failed members every 30 s
	}
	return time.Minute
}

// netLoad is the client load of the network fault scenarios: on every
// node a durable-kv writer of the node's register "r" (recorded in a
// porcupine history), a kv writer of four keys, a reader of linearizable
// dumps, and a monitor of every view's generation.
type netLoad struct {
	t *testing.T
	c *cluster
	h *history

	// gate: every client operation holds it shared; pause takes it
	// exclusively, so no operation is in flight while views converge.
	gate   sync.RWMutex
	heals  atomic.Int64 // resumes so far
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	kvMu   sync.Mutex
	lastKV map[[2]string]string // (node, key) → last acknowledged value, "?" after an unknown outcome

	genMu       sync.Mutex
	gens        map[[3]string][2]uint64 // (holder, state, owner) → highest (incarnation, age) seen
	genSamples  int
	regressions []string
}

func startNetLoad(t *testing.T, c *cluster, seed int64) *netLoad {
	ld := &netLoad{t: t, c: c, h: newHistory(), lastKV: map[[2]string]string{}, gens: map[[3]string][2]uint64{}}
	ld.ctx, ld.cancel = context.WithCancel(context.Background())
	regs := ids(c.nodes)
	for i, nd := range c.nodes {
		// After an unknown outcome the writer waits for the next heal:
		// every write of unknown outcome stays open to the end of the
		// history, and a few per fault keep the check tractable.
		blocked := int64(-1)
		ld.loop(func() {
			if blocked == ld.heals.Load() {
				return
			}
			value := fmt.Sprintf("%s-%d", nd.id, time.Now().UnixNano())
			call := ld.h.now()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := nd.api.put(ctx, agent.DurableKVState, "r", value)
			cancel()
			switch {
			case err == nil:
				ld.h.write(i, nd.id, value, call, true)
			case refused(err) || notReady(err):
				ld.h.notApplied()
			default:
				ld.h.write(i, nd.id, value, call, false)
				blocked = ld.heals.Load()
			}
		}, 60, 120)
		seq := 0
		ld.loop(func() {
			k := [2]string{nd.id, fmt.Sprintf("k%d", seq%4)}
			value := fmt.Sprintf("%s-%d", nd.id, seq)
			seq++
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := nd.api.put(ctx, agent.KVState, k[1], value)
			cancel()
			ld.kvMu.Lock()
			defer ld.kvMu.Unlock()
			switch {
			case err == nil:
				ld.lastKV[k] = value
			case refused(err):
			default:
				ld.lastKV[k] = "?"
			}
		}, 100, 200)
	}
	r := rand.New(rand.NewPCG(uint64(seed), 1))
	ld.loop(func() { _ = ld.read(c.nodes[r.IntN(len(c.nodes))], regs) }, 150, 250)
	// The monitor does not take the gate: it watches through pauses too.
	ld.wg.Add(1)
	go func() {
		defer ld.wg.Done()
		for ld.ctx.Err() == nil {
			ld.sampleGenerations()
			ld.pace(200)
		}
	}()
	return ld
}

// pace waits about ms milliseconds or until the load stops; it paces the
// load and synchronizes nothing.
func (ld *netLoad) pace(ms int) {
	select {
	case <-ld.ctx.Done():
	case <-time.After(time.Duration(ms) * time.Millisecond):
	}
}

// loop runs op under the gate until the load stops, every lo–hi ms.
func (ld *netLoad) loop(op func(), lo, hi int) {
	ld.wg.Add(1)
	go func() {
		defer ld.wg.Done()
		for ld.ctx.Err() == nil {
			ld.gate.RLock()
			op()
			ld.gate.RUnlock()
			ld.pace(lo + rand.IntN(hi-lo))
		}
	}()
}

// read records one linearizable dump of the registers from nd.
func (ld *netLoad) read(nd *node, regs []string) error {
	call := ld.h.now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
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
	ld.h.read(len(ld.c.nodes), values, regs, call)
	return nil
}

// sampleGenerations reads every node's views of kv and durable-kv and
// records any view older than one the same node held before.
func (ld *netLoad) sampleGenerations() {
	for _, holder := range ld.c.nodes {
		for _, state := range []string{agent.KVState, agent.DurableKVState} {
			ctx, cancel := context.WithTimeout(ld.ctx, 2*time.Second)
			var d agent.StateDump
			err := holder.api.get(ctx, "/v1/states/"+state, nil, &d)
			cancel()
			if err != nil {
				continue // unreachable under the fault: nothing seen
			}
			ld.genMu.Lock()
			for _, v := range d.Views {
				k := [3]string{holder.id, state, v.Node}
				g := [2]uint64{v.Incarnation, v.Age}
				prev, seen := ld.gens[k]
				ld.genSamples++
				if seen && (g[0] < prev[0] || (g[0] == prev[0] && g[1] < prev[1])) {
					ld.regressions = append(ld.regressions, fmt.Sprintf("%s's view of %s in %s went back from v%d:%d to %s", holder.id, v.Node, state, prev[0], prev[1], v.Generation))
					continue
				}
				ld.gens[k] = g
			}
			ld.genMu.Unlock()
		}
	}
}

// pause waits for every client operation in flight and holds new ones
// until resume.
func (ld *netLoad) pause()  { ld.gate.Lock() }
func (ld *netLoad) resume() { ld.heals.Add(1); ld.gate.Unlock() }

// stop ends the load.
func (ld *netLoad) stop() {
	ld.cancel()
	ld.wg.Wait()
}

// netScenario runs the scenarios of TestNetFaults on one cluster.
type netScenario struct {
	t    *testing.T
	c    *cluster
	lab  *netLab
	ld   *netLoad
	r    *rand.Rand
	conf string // the timers, for the measurements
}

func (s *netScenario) nodesAt(idx []int) []*node {
	out := make([]*node, 0, len(idx))
	for _, i := range idx {
		out = append(out, s.c.nodes[i])
	}
	return out
}

func (s *netScenario) index(id string) int {
	return slices.IndexFunc(s.c.nodes, func(nd *node) bool { return nd.id == id })
}

// hold keeps a fault in place for d while the load runs (the fault's
// duration, not a synchronization).
func (s *netScenario) hold(d time.Duration) {
	s.t.Logf("fault held for %s", d)
	<-time.After(d)
}

// heal removes every fault with the clients paused and measures how long
// the cluster takes to be whole again: every member alive everywhere, one
// Raft leader, durable-kv ready, kv and durable-kv views converged.
func (s *netScenario) heal(what string) {
	s.t.Helper()
	s.ld.pause()
	defer s.ld.resume()
	at := time.Now()
	s.lab.heal()
	all := s.c.nodes
	s.c.waitMembers(all, allAlive(all), netBound())
	s.c.waitLeader(all, netBound())
	s.c.waitReady(all, netBound())
	s.c.waitConverged(all, netBound(), agent.KVState, agent.DurableKVState)
	measured(s.t, fmt.Sprintf("%s healed → all members alive, one leader, kv and durable-kv converged (%d nodes, %s)", what, len(all), s.conf), time.Since(at))
}

// leaderMinority: the Raft leader and one more node are cut off from the
// other three. The majority elects a new leader and acknowledges durable
// writes; the minority refuses them with the lost quorum named; the heal
// converges.
func (s *netScenario) leaderMinority() {
	t, c := s.t, s.c
	t.Log("scenario: minority partition holding the Raft leader")
	leader := s.index(c.waitLeader(c.nodes, netBound()))
	other := (leader + 1 + s.r.IntN(len(c.nodes)-1)) % len(c.nodes)
	var majority []int
	for i := range c.nodes {
		if i != leader && i != other {
			majority = append(majority, i)
		}
	}
	maj := s.nodesAt(majority)
	t.Logf("partition {%s, %s} (the leader) | %v", c.nodes[leader].id, c.nodes[other].id, ids(maj))
	at := time.Now()
	s.lab.partition([]int{leader, other}, majority)

	eventually(t, "the majority acknowledges a durable write", netBound(), func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := maj[0].api.put(ctx, agent.DurableKVState, "probe", "majority")
		return err == nil, fmt.Sprint(err)
	})
	measured(t, fmt.Sprintf("leader in a 2 | 3 partition → the majority acknowledges a durable write (%s)", s.conf), time.Since(at))
	newLeader := c.waitLeader(maj, netBound())
	t.Logf("new leader %s", newLeader)
	// GET /v1/raft asks every voter for its statistics: the answer waits
	// for the ones cut off.
	patient := *maj[0].api
	hc := *patient.hc
	hc.Timeout = netBound()
	patient.hc = &hc
	st := time.Now()
	if _, err := patient.raft(); err != nil {
		t.Fatalf("GET /v1/raft on %s: %v", maj[0].id, err)
	}
	measured(t, fmt.Sprintf("GET /v1/raft on a majority node while 2 of 5 voters are cut off (%s)", s.conf), time.Since(st))
	for _, i := range []int{leader, other} {
		nd := c.nodes[i]
		eventually(t, nd.id+" (minority) refuses durable writes naming the lost quorum", netBound(), func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			_, err := nd.api.put(ctx, agent.DurableKVState, "probe", "minority")
			if err == nil {
				t.Fatalf("%s acknowledged a durable write in a minority partition", nd.id)
			}
			return strings.Contains(err.Error(), "lost quorum: 2 of 5 voters reachable"), err.Error()
		})
	}
	measured(t, fmt.Sprintf("leader in a 2 | 3 partition → the minority refuses durable writes with \"lost quorum\" (%s)", s.conf), time.Since(at))
	s.heal("leader in a 2 | 3 partition")
}

// split: a random 2 | 3 split under kv writes on both sides. Each side
// sees its own writes and not the other side's; the majority keeps
// acknowledging durable writes; the heal converges.
func (s *netScenario) split() {
	t, c := s.t, s.c
	t.Log("scenario: 2 | 3 split under kv writes on both sides")
	perm := s.r.Perm(len(c.nodes))
	a, b := perm[:2], perm[2:]
	na, nb := s.nodesAt(a), s.nodesAt(b)
	t.Logf("partition %v | %v", ids(na), ids(nb))
	s.lab.partition(a, b)
	for i, side := range [][]*node{na, nb} {
		value := fmt.Sprintf("side-%d-%d", i, time.Now().UnixNano())
		c.mustPut(side[0], agent.KVState, "split", value)
		c.waitValue(side, agent.KVState, side[0], "split", value, netBound())
		for _, o := range [][]*node{nb, na}[i] {
			if got, _, err := kvValue(o, agent.KVState, side[0].id, "split"); err == nil && got == value {
				t.Fatalf("%s sees %s's split=%q across the partition", o.id, side[0].id, got)
			}
		}
	}
	c.mustPut(nb[0], agent.DurableKVState, "probe", "split-majority")
	s.heal("2 | 3 split under kv writes")
}

// oneWay: one node's packets to the others are dropped (it hears them,
// they do not hear it) until they declare it failed; then the heal.
func (s *netScenario) oneWay() {
	t, c := s.t, s.c
	t.Log("scenario: one-way partition")
	x := s.r.IntN(len(c.nodes))
	var others []int
	for i := range c.nodes {
		if i != x {
			others = append(others, i)
		}
	}
	t.Logf("%s's packets to the others are dropped", c.nodes[x].id)
	at := time.Now()
	s.lab.oneWay(x, others)
	c.waitMembers(s.nodesAt(others), map[string]string{c.nodes[x].id: "failed"}, netBound())
	measured(t, fmt.Sprintf("one-way partition → the others declare the silent node failed (%s)", s.conf), time.Since(at))
	s.heal("one-way partition")
}

// loss: every node loses pct % of the packets it receives for d (long
// under E2E_FULL).
func (s *netScenario) loss(pct int, d, long time.Duration) {
	t := s.t
	if full() {
		d = long
	}
	t.Logf("scenario: %d %% packet loss for %s", pct, d)
	s.lab.loss(pct)
	before := s.ld.h.String()
	s.hold(d)
	t.Logf("under loss: before %s; after %s", before, s.ld.h)
	s.heal(fmt.Sprintf("%d %% loss for %s", pct, d))
}

// flap: one node's link goes down and up a few times.
func (s *netScenario) flap() {
	t, c := s.t, s.c
	x := s.r.IntN(len(c.nodes))
	t.Logf("scenario: %s's link flaps", c.nodes[x].id)
	for range 4 {
		s.lab.link(x, false)
		s.hold(time.Duration(300+s.r.IntN(700)) * time.Millisecond)
		s.lab.link(x, true)
		s.hold(time.Duration(300+s.r.IntN(700)) * time.Millisecond)
	}
	s.heal("flapping link")
}

// TestNetFaults: five agents, each in a network namespace of its own,
// under real network faults (nftables and ip link inside the namespaces,
// cutting gossip, Raft and the state transport together): the Raft leader
// in a minority partition, a 2 | 3 split, a one-way partition, 10 % and
// 30 % loss and a flapping link, each healed. Throughout, clients write kv and
// durable-kv on every node and read linearizable dumps. Afterwards no
// acknowledged kv write is lost, the durable history is linearizable
// (porcupine), and no node's view ever went back in generation.
// E2E_FULL runs the agents with the default timers and the losses for 15
// and 30 s.
func TestNetFaults(t *testing.T) {
	seed := seedFor(t)
	opts, conf := clusterOpts{}, "--fast timers"
	if full() {
		opts.extra = func(int) []string { return []string{"--fast=false"} }
		conf = "default configuration"
	}
	c, lab := netCluster(t, 5, opts)
	formed := time.Now()
	c.waitMembers(c.nodes, allAlive(c.nodes), netBound())
	c.waitLeader(c.nodes, netBound())
	c.waitReady(c.nodes, netBound())
	t.Logf("formed in %s", time.Since(formed).Round(time.Millisecond))

	ld := startNetLoad(t, c, seed)
	defer ld.stop()
	s := &netScenario{t: t, c: c, lab: lab, ld: ld, r: rand.New(rand.NewPCG(uint64(seed), 2)), conf: conf}
	s.leaderMinority()
	s.split()
	s.oneWay()
	s.loss(10, 3*time.Second, 15*time.Second)
	s.loss(30, 5*time.Second, 30*time.Second)
	s.flap()
	ld.verify()
}

// verify stops the load and checks what it saw: no acknowledged kv write
// lost (the views converged at the last heal and nothing was written
// since), no view gone back in generation, and a linearizable durable
// history closed by a final linearizable read; each check must have
// something to check.
func (ld *netLoad) verify() {
	t, c := ld.t, ld.c
	t.Helper()
	ld.stop()
	t.Logf("load: %s", ld.h)
	// The load ran on after the last heal: its last writes are still
	// replicating. Every node must come to hold every key's last
	// acknowledged value (a liveness timeout; the time taken is logged).
	checked := 0
	eventually(t, "every node holds every kv key's last acknowledged value", netBound(), func() (bool, string) {
		checked = 0
		for k, want := range ld.lastKV {
			if want == "?" {
				continue
			}
			for _, holder := range c.nodes {
				got, _, err := kvValue(holder, agent.KVState, k[0], k[1])
				if err != nil {
					return false, err.Error()
				}
				if got != want {
					return false, fmt.Sprintf("%s holds %s's %s = %q, the last acknowledged write was %q", holder.id, k[0], k[1], got, want)
				}
			}
			checked++
		}
		return true, ""
	})
	if checked == 0 {
		t.Fatal("no kv key with an acknowledged last write: nothing was checked")
	}
	t.Logf("kv: %d keys hold their last acknowledged value on every node", checked)

	ld.genMu.Lock()
	regressions, samples := ld.regressions, ld.genSamples
	ld.genMu.Unlock()
	for _, r := range regressions {
		t.Error(r)
	}
	if samples == 0 {
		t.Fatal("the generation monitor saw no view")
	}
	t.Logf("generations: %d view samples, %d regressions", samples, len(regressions))

	eventually(t, "a final linearizable dump", netBound(), func() (bool, string) {
		err := ld.read(c.nodes[0], ids(c.nodes))
		return err == nil, fmt.Sprint(err)
	})
	if ld.h.ok == 0 {
		t.Fatal("no durable write was acknowledged")
	}
	ops := ld.h.snapshot()
	t0 := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, time.Minute)
	t.Logf("porcupine: %s over %d operations in %s", res, len(ops), time.Since(t0).Round(time.Millisecond))
	if res != porcupine.Ok {
		path := filepath.Join(c.root, "history.html")
		if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
			t.Logf("visualization: %v", err)
		}
		t.Fatalf("the durable history is %s (not linearizable or not decided); visualization in %s", res, path)
	}
}

// TestNetDelay: three agents with the default timers whose every packet
// takes 50 ms ± 20 ms (a relay in the test: the kernel may lack netem)
// form a cluster and serve
// the client load for a while (5 s, 30 s under E2E_FULL); after the delay
// is lifted the views converge, and the load's checks hold: no
// acknowledged kv write lost, no generation regression, a linearizable
// durable history.
func TestNetDelay(t *testing.T) {
	seed := seedFor(t)
	lab := newNetLab(t, 3)
	lab.startRelay(50*time.Millisecond, 20*time.Millisecond)
	// The default timers: --fast's Raft lease (made for loopback) does not
	// hold a leader across a 100 ms round trip.
	opts := clusterOpts{extra: func(int) []string { return []string{"--fast=false"} }}
	conf := "default configuration"
	at := time.Now()
	c := startNetCluster(t, lab, opts)
	c.waitMembers(c.nodes, allAlive(c.nodes), netBound())
	c.waitLeader(c.nodes, netBound())
	c.waitReady(c.nodes, netBound())
	measured(t, fmt.Sprintf("50 ms ± 20 ms on every packet → 3 agents formed: members alive, one leader, durable-kv ready (%s)", conf), time.Since(at))
	at = time.Now()
	c.mustPut(c.nodes[0], agent.DurableKVState, "delayed", "v")
	c.waitValue(c.nodes, agent.DurableKVState, c.nodes[0], "delayed", "v", netBound())
	measured(t, fmt.Sprintf("50 ms ± 20 ms on every packet → a durable write acknowledged and visible on 3 agents (%s)", conf), time.Since(at))

	ld := startNetLoad(t, c, seed)
	defer ld.stop()
	s := &netScenario{t: t, c: c, lab: lab, ld: ld, conf: conf}
	d := 5 * time.Second
	if full() {
		d = 30 * time.Second
	}
	s.hold(d)
	s.heal(fmt.Sprintf("50 ms ± 20 ms delay for %s", d))
	ld.verify()
}
