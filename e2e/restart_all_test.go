package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// moveAll gives every node new ports: the next start runs it on new
// addresses (as after a move to other hosts or new pod IPs).
func (c *cluster) moveAll() {
	c.t.Helper()
	for _, nd := range c.nodes {
		if nd.running() {
			c.t.Fatalf("%s still runs", nd.id)
		}
		for j := range nd.ports {
			nd.ports[j] = freePort(c.t)
		}
		nd.api = newAPIClient(nd.httpAddr())
	}
}

// TestRestartAll: a 3-server cluster that bootstrapped once stops
// entirely and starts again; it elects a leader and every node's durable
// state comes back. Each way of stopping is tried: gracefully one by one
// (SIGTERM: the servers leave the Raft configuration, the last keeps it)
// or all killed at once (SIGKILL: the configuration keeps all three), on
// the same addresses or on new ones. On new addresses the servers reach
// each other through the Raft addresses their gossip members announce,
// and the leader writes the new addresses into the configuration.
func TestRestartAll(t *testing.T) {
	type restartCase struct {
		name     string
		graceful bool
		move     bool
		// slow runs the agents with the default timers (--fast=false).
		slow bool
	}
	cases := []restartCase{
		{"stopped gracefully", true, false, false},
		{"stopped gracefully, new addresses", true, true, false},
		{"killed, new addresses", false, true, false},
	}
	if full() {
		cases = append(cases, restartCase{"killed", false, false, false},
			restartCase{"killed, new addresses, default timers", false, true, true},
			restartCase{"stopped gracefully, new addresses, default timers", true, true, true})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var opts clusterOpts
			if tc.slow {
				opts.extra = func(int) []string { return []string{"--fast=false"} }
			}
			c := newCluster(t, 3, opts)
			c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
			leader := c.node(c.waitLeader(c.nodes, 30*time.Second))
			c.waitReady(c.nodes, 30*time.Second)
			c.durableWrite(c.nodes, "k")

			if tc.graceful {
				// Followers first, the leader last: it keeps the
				// configuration as the last voter.
				for _, nd := range without(c.nodes, leader) {
					c.terminate(nd, 30*time.Second)
				}
				c.terminate(leader, 30*time.Second)
			} else {
				for _, nd := range c.nodes {
					c.kill(nd)
				}
			}
			if tc.move {
				c.moveAll()
			}

			start := time.Now()
			for _, nd := range c.nodes {
				c.launch(nd)
			}
			for _, nd := range c.nodes {
				eventually(t, nd.id+" serves its admin API", 20*time.Second, func() (bool, string) {
					if !nd.running() {
						t.Fatalf("%s exited right after start (see %s)", nd.id, nd.logPath)
					}
					return c.serving(nd)
				})
			}
			c.waitLeader(c.nodes, 30*time.Second)
			c.waitReady(c.nodes, 30*time.Second)
			measured(t, "start all → leader elected and durable-kv ready on every node", time.Since(start))
			for _, nd := range c.nodes {
				got, ok, err := kvValue(nd, agent.DurableKVState, nd.id, "k")
				if err != nil || !ok || got != nd.id+"-k" {
					t.Fatalf("%s's durable-kv k = %q (found %v, %v), want %q", nd.id, got, ok, err, nd.id+"-k")
				}
			}
			c.durableWrite(c.nodes, "k2")
			eventually(t, "the Raft configuration names every server at its current address", 30*time.Second, func() (bool, string) {
				st, err := c.nodes[0].api.raft()
				if err != nil {
					return false, err.Error()
				}
				if len(st.Peers) != len(c.nodes) {
					return false, fmt.Sprintf("peers %+v", st.Peers)
				}
				for _, p := range st.Peers {
					nd := c.node(p.ID)
					if p.Address != nd.addr(2) || p.Suffrage != "voter" {
						return false, fmt.Sprintf("%s at %s (%s), its Raft address is %s", p.ID, p.Address, p.Suffrage, nd.addr(2))
					}
				}
				return true, ""
			})
			measured(t, "start all → configuration at the current addresses", time.Since(start))
		})
	}
}
