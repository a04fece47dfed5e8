package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// TestRemoveADeadServer kills a follower of a 3-node cluster: raft peers
// on the leader shows it unreachable with the error and the time since the
// leader last reached it (not "caught up, 0s ago"); dstatectl raft
// remove-peer takes it out of the configuration and dstatectl force-leave
// out of gossip, after which quorum is counted over the 2 voters left and
// durable writes go on.
func TestRemoveADeadServer(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	leader := c.node(c.waitLeader(c.nodes, 30*time.Second))
	c.waitReady(c.nodes, 30*time.Second)
	var dead *node
	var survivors []*node
	for _, nd := range c.nodes {
		if nd != leader && dead == nil {
			dead = nd
		} else {
			survivors = append(survivors, nd)
		}
	}
	c.kill(dead)
	c.waitMembers(survivors, map[string]string{dead.id: "failed"}, 30*time.Second)

	eventually(t, "the leader's raft peers show "+dead.id+" unreachable with its last contact", 30*time.Second, func() (bool, string) {
		out, err := c.cli(leader, "--format", "json", "raft", "peers")
		if err != nil {
			return false, err.Error()
		}
		var peers []agent.RaftPeer
		if err := json.Unmarshal([]byte(out), &peers); err != nil {
			return false, err.Error()
		}
		for _, p := range peers {
			if p.ID == dead.id {
				return p.State == "unreachable" && p.Error != "" && p.LastContactMs > 0, fmt.Sprintf("%+v", p)
			}
		}
		return false, out
	})
	table, err := c.cli(leader, "raft", "peers")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table, "unreachable") {
		t.Fatalf("raft peers does not show %s unreachable:\n%s", dead.id, table)
	}
	t.Logf("raft peers with %s dead:\n%s", dead.id, table)

	out, err := c.cli(survivors[1], "raft", "remove-peer", dead.id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2 voters left") {
		t.Fatalf("raft remove-peer said %q", out)
	}
	out, err = c.cli(survivors[1], "--format", "json", "force-leave", dead.id)
	if err != nil {
		t.Fatal(err)
	}
	var fl agent.ForceLeaveResult
	if err := json.Unmarshal([]byte(out), &fl); err != nil || fl.Node != dead.id || fl.Was != "failed" {
		t.Fatalf("force-leave answered %q (%v)", out, err)
	}
	c.waitMembers(survivors, map[string]string{dead.id: "left"}, 30*time.Second)

	for _, nd := range survivors {
		st, err := nd.api.raft()
		if err != nil {
			t.Fatal(err)
		}
		if countVoters(st) != 2 {
			t.Fatalf("%s's raft peers: %+v, want the 2 survivors", nd.id, st.Peers)
		}
		for _, p := range st.Peers {
			if p.State == "unreachable" {
				t.Fatalf("%s's raft peers still hold an unreachable server: %+v", nd.id, p)
			}
		}
	}
	// Quorum is 2 of 2: durable writes succeed on both survivors.
	for _, nd := range survivors {
		c.mustPut(nd, agent.DurableKVState, "after-remove", nd.id)
	}
	if _, err := c.cli(leader, "raft", "remove-peer", dead.id); err == nil || !strings.Contains(err.Error(), "not in the Raft configuration") {
		t.Fatalf("removing %s again: %v, want not in the Raft configuration", dead.id, err)
	}
	if _, err := c.cli(leader, "force-leave", survivors[1].id); err == nil || !strings.Contains(err.Error(), "only a failed member") {
		t.Fatalf("force-leave of the alive %s: %v, want a refusal", survivors[1].id, err)
	}
}

// TestServerFromAnotherCANeverCounts starts three servers with
// --bootstrap-expect 3 whose third has a certificate from another CA: it
// joins gossip, but no Raft handshake with it succeeds, so nobody counts
// it, no Raft group is bootstrapped with a voter nobody can reach, and
// health on both sides names the refused servers with the TLS reason.
func TestServerFromAnotherCANeverCounts(t *testing.T) {
	good, bad := newPKI(t, "good"), newPKI(t, "bad")
	c := newCluster(t, 3, clusterOpts{noStart: true, extra: func(i int) []string {
		id := fmt.Sprintf("n%d", i+1)
		if i == 2 {
			return bad.tlsFlags(id, nil)
		}
		return good.tlsFlags(id, nil)
	}})
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	stranger := c.nodes[2]

	named := func(observer *node, want ...string) {
		eventually(t, fmt.Sprintf("%s's health names %v unreachable with the TLS reason", observer.id, want), 30*time.Second, func() (bool, string) {
			h, _, err := observer.api.health(bg()) // 503 while no leader is elected
			if err != nil {
				return false, err.Error()
			}
			got := map[string]string{}
			for _, u := range h.UnreachableServers {
				got[u.ID] = u.Reason
			}
			for _, id := range want {
				if !strings.Contains(got[id], "certificate") {
					return false, fmt.Sprintf("%+v", h.UnreachableServers)
				}
			}
			return true, ""
		})
	}
	named(c.nodes[0], stranger.id)
	named(c.nodes[1], stranger.id)
	named(stranger, "n1", "n2")
	if line := logLine(c.nodes[0], "raft server unreachable", stranger.id); line == "" {
		t.Fatalf("n1's log does not name %s as unreachable (see %s)", stranger.id, c.nodes[0].logPath)
	}

	for _, nd := range c.nodes {
		st, err := nd.api.raft()
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Peers) != 0 || st.Leader != "" {
			t.Fatalf("%s bootstrapped Raft with a server nobody can reach: leader %q, peers %+v", nd.id, st.Leader, st.Peers)
		}
	}
}
