package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// terminate sends SIGTERM to nd (a graceful leave, as an operator or
// Kubernetes stops a node), waits for the process to end and checks that
// it exited with status 0: the agent left the Raft configuration (or kept
// it as the last voter) without error. It returns how long that took.
func (c *cluster) terminate(nd *node, timeout time.Duration) time.Duration {
	c.t.Helper()
	nd.mu.Lock()
	cmd := nd.cmd
	nd.mu.Unlock()
	if cmd == nil || !nd.running() {
		c.t.Fatalf("%s is not running", nd.id)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("SIGTERM %s: %v", nd.id, err)
	}
	c.waitExit(nd, timeout)
	took := time.Since(start)
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Fatalf("%s exited with status %d after SIGTERM (see %s)", nd.id, code, nd.logPath)
	}
	return took
}

// raftServers returns the servers of the Raft configuration as nd sees it.
func raftServers(nd *node) ([]string, error) {
	st, err := nd.api.raft()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nd.id, err)
	}
	var out []string
	for _, p := range st.Peers {
		out = append(out, p.ID)
	}
	slices.Sort(out)
	return out, nil
}

// requireServers fails unless nd's Raft configuration is exactly want.
func (c *cluster) requireServers(nd *node, want []*node) {
	c.t.Helper()
	got, err := raftServers(nd)
	if err != nil {
		c.t.Fatal(err)
	}
	w := ids(want)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		c.t.Fatalf("%s's Raft configuration is %v, want %v", nd.id, got, w)
	}
}

// durableWrite makes one durable-kv write on each of nodes, without retry:
// it succeeds only when the cluster has a leader and a quorum.
func (c *cluster) durableWrite(nodes []*node, key string) {
	c.t.Helper()
	for _, nd := range nodes {
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		_, err := nd.api.put(ctx, agent.DurableKVState, key, nd.id+"-"+key)
		cancel()
		if err != nil {
			c.t.Fatalf("durable write %s on %s: %v", key, nd.id, err)
		}
	}
}

// without returns nodes without nd.
func without(nodes []*node, nd *node) []*node {
	return slices.DeleteFunc(slices.Clone(nodes), func(o *node) bool { return o == nd })
}

// TestStopFollowersOneByOne: the followers of a 3-server cluster (5 with
// E2E_FULL) stop with SIGTERM back to back. Each exits only once it is
// out of the Raft configuration, so the remaining servers keep their
// leader and a durable write on each of them succeeds at once after every
// stop, down to the last server.
func TestStopFollowersOneByOne(t *testing.T) {
	n := 3
	if full() {
		n = 5
	}
	// Default timers (--fast=false overrides the harness's --fast): the
	// leader's reconciliation then runs every 2 s, as in production, and
	// cannot remove a stopping server before the next one stops.
	c := newCluster(t, n, clusterOpts{extra: func(int) []string { return []string{"--fast=false"} }})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	leader := c.node(c.waitLeader(c.nodes, 30*time.Second))
	c.waitReady(c.nodes, 30*time.Second)
	c.durableWrite(c.nodes, "k0")

	live := slices.Clone(c.nodes)
	start := time.Now()
	for i, nd := range c.nodes {
		if nd == leader {
			continue
		}
		took := c.terminate(nd, 30*time.Second)
		measured(t, fmt.Sprintf("SIGTERM → %s out of the Raft configuration and exited", nd.id), took)
		live = without(live, nd)
		c.requireServers(leader, live)
		c.durableWrite(live, fmt.Sprintf("k%d", i+1))
		if st, err := leader.api.raft(); err != nil || st.Leader != leader.id {
			t.Fatalf("after %s stopped, %s names leader %q (%v), want itself", nd.id, leader.id, st.Leader, err)
		}
	}
	measured(t, fmt.Sprintf("stop %d followers one by one, a durable write after each", n-1), time.Since(start))
	c.requireServers(leader, []*node{leader})
	c.terminate(leader, 30*time.Second) // the last voter stops cleanly and keeps its state
}

// TestLeaveLeaderThenNext: `dstatectl leave` on the leader answers once it
// has handed leadership over and is out of the Raft configuration; the two
// others elect a leader among them and durable writes continue; the new
// leader then stops too (SIGTERM) and the last server leads alone.
func TestLeaveLeaderThenNext(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	leader := c.node(c.waitLeader(c.nodes, 30*time.Second))
	c.waitReady(c.nodes, 30*time.Second)
	c.durableWrite(c.nodes, "before")

	start := time.Now()
	out, err := c.cli(leader, "leave")
	if err != nil {
		t.Fatal(err)
	}
	measured(t, "dstatectl leave on the leader → leadership handed over, out of the Raft configuration", time.Since(start))
	if !strings.Contains(out, "left the cluster and the Raft configuration after handing leadership over") {
		t.Fatalf("dstatectl leave said %q", out)
	}
	rest := without(c.nodes, leader)
	for _, nd := range rest {
		c.requireServers(nd, rest)
	}
	c.waitExit(leader, 30*time.Second)
	next := c.node(c.waitLeader(rest, 30*time.Second))
	c.durableWrite(rest, "after-leader-left")

	took := c.terminate(next, 30*time.Second)
	measured(t, "SIGTERM on the new leader → out of the Raft configuration and exited", took)
	last := without(rest, next)
	c.requireServers(last[0], last)
	if got := c.waitLeader(last, 30*time.Second); got != last[0].id {
		t.Fatalf("leader %s, want %s", got, last[0].id)
	}
	c.durableWrite(last, "alone")
}

// TestLeaveWithoutQuorumSaysWhy: a server whose two peers were killed
// cannot be removed from the Raft configuration; `dstatectl leave` fails
// after the agent's leave_timeout with the reason, and the agent still
// shuts down.
func TestLeaveWithoutQuorumSaysWhy(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{extra: func(int) []string { return []string{"--leave-timeout", "1s"} }})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.waitLeader(c.nodes, 30*time.Second)
	c.waitReady(c.nodes, 30*time.Second)
	survivor := c.nodes[0]
	for _, nd := range c.nodes[1:] {
		c.kill(nd)
	}
	_, err := c.cli(survivor, "leave")
	if err == nil {
		t.Fatal("dstatectl leave succeeded on a server without a quorum")
	}
	t.Logf("as expected: %v", err)
	for _, want := range []string{"still a Raft voter", "is still in the raft configuration", "is shutting down"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("dstatectl leave: %v; want it to say %q", err, want)
		}
	}
	c.waitExit(survivor, 30*time.Second)
}
