package e2e

import (
	"net"
	"testing"
	"time"

	"github.com/dstate-go/dstate/internal/gossipattack"
	"github.com/dstate-go/dstate/pkg/agent"
)

// gossipAttackMaxRSS bounds an attacked agent's resident memory. memberlist
// caps a decompressed message at 40 MB, which costs up to 128 MiB to
// refuse; without the cap one 1 GiB bomb over TCP costs 4 GiB and a few
// 128 MiB datagrams took an agent from 26 to 599 MiB.
const gossipAttackMaxRSS = 384 << 20

// TestGossipAttacksLeaveTheAgentUp sends a real agent's gossip port, in the
// default configuration (no keyring; the cluster label is no secret), the
// malformed messages that crashed
// or bloated earlier memberlist versions, then checks the process is still
// running, still in the cluster, still replicating, and within its memory
// bound.
func TestGossipAttacksLeaveTheAgentUp(t *testing.T) {
	c := newCluster(t, 2, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	target := c.nodes[0]
	gossip := target.addr(0)

	steps := []struct {
		name string
		msg  []byte
	}{
		{"push/pull header announcing -1 nodes", gossipattack.NegativePushPull()},
		{"node with a one-entry version vector", gossipattack.ShortVersionJoin(1)},
		{"node with a five-entry version vector", gossipattack.ShortVersionJoin(1, 5, 2, 2, 5)},
		{"stream that decompresses to 1 GiB", gossipattack.Bomb(1 << 30)},
	}
	for _, s := range steps {
		if err := gossipattack.SendStream(gossip, gossipattack.Labeled(c.name, s.msg), time.Minute); err != nil {
			t.Fatalf("%s (%d bytes): %v", s.name, len(s.msg), err)
		}
		if !target.running() {
			t.Fatalf("the agent exited after a %s (%d bytes):\n%s", s.name, len(s.msg), tail(target.logPath, 20))
		}
	}

	conn, err := net.Dial("udp", gossip)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bomb := gossipattack.Labeled(c.name, gossipattack.Bomb(128<<20))
	for range 4 {
		if _, err := conn.Write(bomb); err != nil {
			t.Fatal(err)
		}
	}
	if err := gossipattack.Ping(conn, nil, c.name, target.id, time.Minute); err != nil {
		t.Fatalf("after four %d-byte datagrams that decompress to 128 MiB: %v\n%s", len(bomb), err, tail(target.logPath, 20))
	}

	m, err := scrape(target)
	if err != nil {
		t.Fatal(err)
	}
	rss := m["process_resident_memory_bytes"]
	t.Logf("resident memory after the attacks: %.0f MiB", rss/(1<<20))
	switch {
	case raceAgents():
		// The race detector multiplies memory use (5–10x, Go's race
		// detector documentation); the bound is checked on agents built
		// without it (make test, make e2e).
		t.Logf("agents built with -race: resident memory not compared with %d MiB", gossipAttackMaxRSS>>20)
	case rss > gossipAttackMaxRSS:
		t.Errorf("resident memory %.0f MiB after the attacks, over %d MiB", rss/(1<<20), gossipAttackMaxRSS>>20)
	}
	if !target.running() {
		t.Fatalf("the agent exited:\n%s", tail(target.logPath, 20))
	}
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.mustPut(target, agent.KVState, "after-attack", "still-here")
	c.waitConverged(c.nodes, 30*time.Second, agent.KVState)
}
