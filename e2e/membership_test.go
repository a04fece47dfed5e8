package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// TestLeaveRejoin: `dstatectl leave` makes a node leave gracefully; the
// others report it left, drop its views and remove it from Raft. Started
// again from its data dir it rejoins: its kv comes back, it is a Raft voter
// again, and the views converge.
func TestLeaveRejoin(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.waitLeader(c.nodes, 30*time.Second)
	c.waitReady(c.nodes, 30*time.Second)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	stay := []*node{n1, n2}
	c.mustPut(n3, agent.KVState, "k", "v3")
	c.mustPut(n3, agent.DurableKVState, "k", "d3")
	c.waitConverged(c.nodes, 20*time.Second, agent.KVState, agent.DurableKVState)

	left := time.Now()
	if _, err := c.cli(n3, "leave"); err != nil {
		t.Fatal(err)
	}
	c.waitExit(n3, 30*time.Second)
	c.waitMembers(stay, map[string]string{n3.id: "left"}, 30*time.Second)
	// A departed node's views are dropped on every state.
	eventually(t, "the others drop the departed node's views", 20*time.Second, func() (bool, string) {
		for _, s := range stay {
			for _, state := range []string{agent.KVState, agent.DurableKVState, agent.LoadState} {
				m, err := views(s, state)
				if err != nil {
					return false, err.Error()
				}
				if _, ok := m[n3.id]; ok {
					return false, fmt.Sprintf("%s still holds %s's %s", s.id, n3.id, state)
				}
			}
		}
		return true, ""
	})
	eventually(t, "the leader removes the departed server from Raft", 20*time.Second, func() (bool, string) {
		st, err := n1.api.raft()
		if err != nil {
			return false, err.Error()
		}
		for _, p := range st.Peers {
			if p.ID == n3.id {
				return false, fmt.Sprintf("raft peers %+v", st.Peers)
			}
		}
		return len(st.Peers) == 2, fmt.Sprintf("raft peers %+v", st.Peers)
	})
	measured(t, "graceful leave → views dropped and server removed from Raft", time.Since(left))

	rejoin := time.Now()
	c.start(n3)
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	eventually(t, "the rejoined node is a Raft voter again", 30*time.Second, func() (bool, string) {
		st, err := n1.api.raft()
		if err != nil {
			return false, err.Error()
		}
		voters := 0
		for _, p := range st.Peers {
			if p.Suffrage == "voter" {
				voters++
			}
		}
		return voters == 3, fmt.Sprintf("raft peers %+v", st.Peers)
	})
	c.waitReady(c.nodes, 30*time.Second)
	if got, _, err := kvValue(n3, agent.KVState, n3.id, "k"); err != nil || got != "v3" {
		t.Fatalf("after rejoin %s's kv k = %q (%v), want v3 restored from its data dir", n3.id, got, err)
	}
	if got, _, err := kvValue(n3, agent.DurableKVState, n3.id, "k"); err != nil || got != "d3" {
		t.Fatalf("after rejoin %s's durable-kv k = %q (%v), want d3 restored from Raft", n3.id, got, err)
	}
	c.waitConverged(c.nodes, 30*time.Second, agent.KVState, agent.DurableKVState)
	// load changes every interval (periodic-only sync): every node holds
	// a view of every other again.
	eventually(t, "every node holds every load view again", 20*time.Second, func() (bool, string) {
		for _, h := range c.nodes {
			m, err := views(h, agent.LoadState)
			if err != nil {
				return false, err.Error()
			}
			if len(m) != 3 {
				return false, fmt.Sprintf("%s holds %d load views", h.id, len(m))
			}
		}
		return true, ""
	})
	measured(t, "restart after a leave → rejoined, voter, views converged", time.Since(rejoin))
}

// TestBootstrapExpectAnyOrder: three servers with bootstrap-expect 3,
// started one after another in a seeded random order (every order with
// E2E_FULL), elect one leader and all become voters.
func TestBootstrapExpectAnyOrder(t *testing.T) {
	orders := [][]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	if !full() {
		r := rand.New(rand.NewPCG(uint64(seedFor(t)), 0))
		orders = [][]int{orders[r.IntN(len(orders))]}
	}
	for _, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			c := newCluster(t, 3, clusterOpts{noStart: true})
			var started []*node
			for _, i := range order {
				nd := c.nodes[i]
				c.start(nd)
				started = append(started, nd)
				// Until the third server is up nobody bootstraps.
				if len(started) < 3 {
					st, err := nd.api.raft()
					if err != nil {
						t.Fatal(err)
					}
					if st.Leader != "" {
						t.Fatalf("%s reports leader %q with only %v started", nd.id, st.Leader, ids(started))
					}
				}
			}
			t0 := time.Now()
			c.waitLeader(c.nodes, 30*time.Second)
			eventually(t, "three voters", 30*time.Second, func() (bool, string) {
				for _, nd := range c.nodes {
					st, err := nd.api.raft()
					if err != nil {
						return false, err.Error()
					}
					var voters []string
					for _, p := range st.Peers {
						if p.Suffrage == "voter" {
							voters = append(voters, p.ID)
						}
					}
					slices.Sort(voters)
					if !slices.Equal(voters, []string{"n1", "n2", "n3"}) {
						return false, fmt.Sprintf("%s: voters %v", nd.id, voters)
					}
				}
				return true, ""
			})
			c.waitReady(c.nodes, 30*time.Second)
			measured(t, "last of 3 servers started → leader, 3 voters, durable-kv ready everywhere", time.Since(t0))
			for _, nd := range c.nodes {
				c.mustPut(nd, agent.DurableKVState, "boot", nd.id)
			}
			c.waitConverged(c.nodes, 20*time.Second, agent.DurableKVState)
		})
	}
}
