package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addClient reserves ports and a data dir for a client agent (no Raft)
// named id in c, which kills it with the others when the test ends.
func (c *cluster) addClient(id string) *node {
	c.t.Helper()
	nd := &node{id: id, dataDir: filepath.Join(c.root, id), logPath: filepath.Join(c.root, id+".log")}
	for j := range nd.ports {
		nd.ports[j] = freePort(c.t)
	}
	nd.api = newAPIClient(nd.httpAddr())
	c.nodes = append(c.nodes, nd)
	return nd
}

// launchClient starts nd as a client agent that joins through seeds (as
// given, host names included) and waits until its admin API answers.
func (c *cluster) launchClient(nd *node, seeds ...string) {
	c.t.Helper()
	args := []string{"agent", "--fast", "--server=false", "--node-id", nd.id, "--data-dir", nd.dataDir, "--cluster", c.name,
		"--serf-addr", nd.addr(0), "--transport-addr", nd.addr(1), "--raft-addr", nd.addr(2), "--http-addr", nd.addr(3),
		"--load-interval", "500ms", "--log-level", "info"}
	for _, s := range seeds {
		args = append(args, "--join", s)
	}
	c.launchArgs(nd, args)
	c.waitServing(nd)
}

// byName is nd's gossip address with the host name localhost.
func byName(nd *node) string { return fmt.Sprintf("localhost:%d", nd.ports[0]) }

// TestJoinByName: an agent started with --join localhost:PORT joins
// through the name, and dstatectl join accepts a name too.
func TestJoinByName(t *testing.T) {
	c := newCluster(t, 1, clusterOpts{})
	n1 := c.nodes[0]
	j1 := c.addClient("j1")
	c.launchClient(j1, byName(n1))
	c.waitMembers([]*node{n1, j1}, allAlive([]*node{n1, j1}), 30*time.Second)

	j2 := c.addClient("j2")
	c.launchClient(j2)
	out, err := c.cli(j2, "join", byName(n1))
	if err != nil {
		t.Fatalf("dstatectl join %s: %v", byName(n1), err)
	}
	if !strings.Contains(out, "joined the cluster through 1 of 1 seeds") {
		t.Fatalf("dstatectl join %s said %q", byName(n1), out)
	}
	c.waitMembers([]*node{n1, j1, j2}, allAlive([]*node{n1, j1, j2}), 30*time.Second)
}

// TestJoinRetriesUntilTheSeedStarts: an agent whose seed (given by name)
// is not up yet keeps resolving and retrying, and joins once the seed
// starts; the seed itself was started without --join.
func TestJoinRetriesUntilTheSeedStarts(t *testing.T) {
	c := newCluster(t, 1, clusterOpts{noStart: true})
	n1 := c.nodes[0]
	j1 := c.addClient("j1")
	c.launchClient(j1, byName(n1))
	eventually(t, "j1 logs a failed join round", 30*time.Second, func() (bool, string) {
		b, err := os.ReadFile(j1.logPath)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(string(b), "join failed"), "no failed join round logged yet"
	})
	if ms, err := j1.api.members(); err != nil || len(ms) != 1 {
		t.Fatalf("j1's members before its seed started: %v (err %v), want itself only", ms, err)
	}
	took := time.Now()
	c.start(n1)
	c.waitMembers([]*node{n1, j1}, allAlive([]*node{n1, j1}), 30*time.Second)
	measured(t, "seed started → the agent retrying --join localhost:PORT is a member", time.Since(took))
}
