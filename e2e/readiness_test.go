package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// restartReady launches nd again from its data dir and returns how long
// it took from the launch until durable-kv was registered on it and took
// a durable write.
func (c *cluster) restartReady(nd *node, key string) time.Duration {
	c.t.Helper()
	start := time.Now()
	c.launch(nd)
	c.waitReady([]*node{nd}, 30*time.Second)
	took := time.Since(start)
	if _, err := nd.api.put(bg(), agent.DurableKVState, key, "v"); err != nil {
		c.t.Fatalf("%s: durable write right after durable-kv was ready: %v", nd.id, err)
	}
	return took
}

// TestDurableReadyAfterRestart measures restart → durable-kv ready on a
// 3-server cluster whose leader stays up, with the default timers (no
// --fast): a follower killed (SIGKILL) and restarted once the others
// report it failed, a follower stopped gracefully (SIGTERM: it left the
// Raft configuration and must be added back) and restarted, and the
// leader killed and restarted once the others elected a new one.
func TestDurableReadyAfterRestart(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{extra: func(int) []string { return []string{"--fast=false"} }})
	c.waitMembers(c.nodes, allAlive(c.nodes), 60*time.Second)
	c.waitLeader(c.nodes, 60*time.Second)
	c.waitReady(c.nodes, 60*time.Second)

	follower := func() (*node, []*node) {
		leader := c.waitLeader(c.nodes, 60*time.Second)
		for _, nd := range c.nodes {
			if nd.id != leader {
				return nd, without(c.nodes, nd)
			}
		}
		t.Fatal("no follower")
		return nil, nil
	}

	nd, others := follower()
	c.kill(nd)
	c.waitMembers(others, map[string]string{nd.id: "failed"}, 60*time.Second)
	measured(t, "follower SIGKILL, restarted → durable-kv ready (default timers)", c.restartReady(nd, "after-kill"))

	nd, _ = follower()
	c.terminate(nd, 60*time.Second)
	measured(t, "follower SIGTERM (left the Raft configuration), restarted → durable-kv ready (default timers)", c.restartReady(nd, "after-term"))
	eventually(t, nd.id+" is a voter again", 30*time.Second, func() (bool, string) {
		servers, err := raftServers(c.nodes[0])
		if err != nil {
			return false, err.Error()
		}
		return slices.Contains(servers, nd.id), fmt.Sprintf("servers %v", servers)
	})

	leader := c.node(c.waitLeader(c.nodes, 60*time.Second))
	c.kill(leader)
	c.waitLeader(without(c.nodes, leader), 60*time.Second)
	measured(t, "leader SIGKILL, new leader elected, old leader restarted → durable-kv ready (default timers)", c.restartReady(leader, "after-leader-kill"))
	c.waitLeader(c.nodes, 60*time.Second)
}
