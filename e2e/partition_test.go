package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// healBound is the documented bound on view convergence after a
// replication partition heals (e2e/RESULTS.md has the measured figures):
// the agent's default digest interval (500ms, which --fast does not
// change, and no periodic full sync) makes every node send every peer a
// digest, from which each view that missed writes is pulled once; the
// bound leaves room for a loaded machine.
const healBound = 10 * time.Second

// isolate cuts victim's state replication off from the others, both ways.
func (c *cluster) isolate(victim *node, others []*node) {
	c.t.Helper()
	if err := victim.api.setFaults(ids(others)); err != nil {
		c.t.Fatalf("faults on %s: %v", victim.id, err)
	}
	for _, o := range others {
		if err := o.api.setFaults([]string{victim.id}); err != nil {
			c.t.Fatalf("faults on %s: %v", o.id, err)
		}
	}
}

// heal clears the drop sets of nodes.
func (c *cluster) heal(nodes []*node) {
	c.t.Helper()
	for _, nd := range nodes {
		if err := nd.api.setFaults(nil); err != nil {
			c.t.Fatalf("faults on %s: %v", nd.id, err)
		}
	}
}

// dropped returns how many frames nd's fault hook dropped so far.
func dropped(nd *node) (uint64, error) {
	st, err := nd.api.faults()
	return st.Dropped, err
}

// TestPartitionHeal: cut one node's state replication off (the transport
// fault hook; gossip and Raft still flow), write on both sides, check that
// nothing crosses, heal, and measure how long the views take to converge.
func TestPartitionHeal(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.waitLeader(c.nodes, 30*time.Second)
	c.waitReady(c.nodes, 30*time.Second)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	majority := []*node{n1, n2}
	c.mustPut(n3, agent.KVState, "side", "before")
	c.waitConverged(c.nodes, 20*time.Second, agent.KVState, agent.DurableKVState)

	c.isolate(n3, majority)
	base3, err := dropped(n3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		c.mustPut(n1, agent.KVState, "side", fmt.Sprintf("majority-%d", i))
		c.mustPut(n3, agent.KVState, "side", fmt.Sprintf("minority-%d", i))
		c.mustPut(n3, agent.DurableKVState, "side", fmt.Sprintf("minority-%d", i))
	}
	// n2 received n1's writes, so n1 sent them to n3 too: dropped there.
	c.waitValue([]*node{n2}, agent.KVState, n1, "side", "majority-4", 10*time.Second)
	// n3 sent its writes (the hook counted them) and they did not arrive.
	eventually(t, "n3 drops its frames to the majority", 10*time.Second, func() (bool, string) {
		d, err := dropped(n3)
		return err == nil && d >= base3+10, fmt.Sprintf("%d dropped (%v)", d-base3, err)
	})
	for _, h := range majority {
		for _, state := range []string{agent.KVState, agent.DurableKVState} {
			if got, _, err := kvValue(h, state, n3.id, "side"); err != nil || got == "minority-4" {
				t.Fatalf("%s sees %s's %s side=%q (%v) across the partition", h.id, n3.id, state, got, err)
			}
		}
	}
	if got, _, err := kvValue(n3, agent.KVState, n1.id, "side"); err != nil || got == "majority-4" {
		t.Fatalf("n3 sees n1's side=%q (%v) across the partition", got, err)
	}
	// Membership is not partitioned: everyone is still alive.
	c.waitMembers(c.nodes, allAlive(c.nodes), 5*time.Second)

	healed := time.Now()
	c.heal(c.nodes)
	conv := c.waitConverged(c.nodes, healBound, agent.KVState, agent.DurableKVState)
	measured(t, "replication partition of 1 of 3 nodes healed → kv and durable-kv views converged", conv)
	c.waitValue(c.nodes, agent.KVState, n3, "side", "minority-4", time.Second)
	c.waitValue(c.nodes, agent.KVState, n1, "side", "majority-4", time.Second)
	t.Logf("healed at %s", healed.Format(time.RFC3339Nano))
}
