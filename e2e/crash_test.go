package e2e

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// TestCrashRestart: SIGKILL one node; the others report it failed and keep
// its views, which age into staleness (a failed node's view is kept, a
// departed node's is dropped: see TestLeaveRejoin). Restarted from its data
// dir, its Local (kv) and Raft (durable-kv) states come back under a newer
// generation and every view converges again.
func TestCrashRestart(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.waitLeader(c.nodes, 30*time.Second)
	c.waitReady(c.nodes, 30*time.Second)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	survivors := []*node{n1, n2}

	var before [2]agent.WriteResult
	for i := range 5 {
		before[0] = c.mustPut(n3, agent.KVState, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
		before[1] = c.mustPut(n3, agent.DurableKVState, fmt.Sprintf("k%d", i), fmt.Sprintf("v%d", i))
	}
	c.mustPut(n1, agent.KVState, "greeting", "hello")
	c.waitConverged(c.nodes, 20*time.Second, agent.KVState, agent.DurableKVState)
	held := map[string]agent.ViewEntry{}
	for _, state := range []string{agent.KVState, agent.DurableKVState} {
		m, err := views(n3, state)
		if err != nil {
			t.Fatal(err)
		}
		held[state] = m[n3.id]
	}

	killed := time.Now()
	c.kill(n3)
	detect := c.waitMembers(survivors, map[string]string{n3.id: "failed"}, 30*time.Second)
	measured(t, "SIGKILL → the other nodes report the node failed", detect)

	// The failed node's views are kept (not dropped) at their last
	// generation, and the periodic load state shows them going stale.
	for _, s := range survivors {
		for _, state := range []string{agent.KVState, agent.DurableKVState} {
			m, err := views(s, state)
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := m[n3.id]; !ok || v.Generation != held[state].Generation {
				t.Fatalf("%s: %s's view of the failed %s is %+v, want it kept at %s", s.id, state, n3.id, v, held[state].Generation)
			}
		}
	}
	eventually(t, "the survivors report the failed node's load view stale", 20*time.Second, func() (bool, string) {
		for _, s := range survivors {
			d, err := s.api.dump(agent.LoadState, url.Values{"max_staleness": {"1s"}})
			if err != nil {
				return false, err.Error()
			}
			stale := false
			for _, p := range d.StalePeers {
				stale = stale || p == n3.id
			}
			if !stale {
				return false, fmt.Sprintf("%s: stale peers %v", s.id, d.StalePeers)
			}
		}
		return true, ""
	})
	c.mustPut(n1, agent.KVState, "greeting", "hello again")

	restarted := time.Now()
	c.start(n3)
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.waitReady([]*node{n3}, 30*time.Second)
	for _, state := range []string{agent.KVState, agent.DurableKVState} {
		m, err := views(n3, state)
		if err != nil {
			t.Fatal(err)
		}
		v := m[n3.id]
		old := held[state]
		if fmt.Sprint(v.Value) != fmt.Sprint(old.Value) {
			t.Fatalf("%s after restart: %s holds %v, before the kill %v", state, n3.id, v.Value, old.Value)
		}
		// The restored object keeps its generation (pkg/dstate Restore:
		// peers see the usual order); it must never go backwards.
		if genLess(v, old) {
			t.Fatalf("%s after restart: generation %s is older than %s before the kill", state, v.Generation, old.Generation)
		}
		t.Logf("%s: %s before the kill, %s restored", state, old.Generation, v.Generation)
	}
	conv := c.waitConverged(c.nodes, 30*time.Second, agent.KVState, agent.DurableKVState)
	c.waitValue(c.nodes, agent.KVState, n1, "greeting", "hello again", 10*time.Second)
	measured(t, "restart → kv and durable-kv views converged again (from admin API up)", conv)
	measured(t, "SIGKILL → restarted node converged (whole cycle)", time.Since(killed))
	t.Logf("restart to converged: %s", time.Since(restarted).Round(time.Millisecond))
	// Writes after the restart order after everything before the kill.
	for i, state := range []string{agent.KVState, agent.DurableKVState} {
		after := c.mustPut(n3, state, "k0", "after")
		m, err := views(n3, state)
		if err != nil {
			t.Fatal(err)
		}
		if v := m[n3.id]; !genLess(held[state], v) {
			t.Fatalf("%s: a write after the restart has generation %s, not newer than %s (before the kill; write said %s, last acknowledged %s)",
				state, v.Generation, held[state].Generation, after.Generation, before[i].Generation)
		}
		c.waitValue(c.nodes, state, n3, "k0", "after", 10*time.Second)
	}
}

// genLess orders two views' generations, incarnation first.
func genLess(a, b agent.ViewEntry) bool {
	if a.Incarnation != b.Incarnation {
		return a.Incarnation < b.Incarnation
	}
	return a.Age < b.Age
}
