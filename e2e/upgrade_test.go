package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// syncCounter reads dstate_sync_total{state,counter} from nd's /metrics.
func syncCounter(nd *node, state, counter string) (float64, error) {
	resp, err := nd.api.hc.Get(nd.api.base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("metrics: HTTP %d: %s", resp.StatusCode, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "dstate_sync_total{") ||
			!strings.Contains(line, `state="`+state+`"`) || !strings.Contains(line, `counter="`+counter+`"`) {
			continue
		}
		f := strings.Fields(line)
		return strconv.ParseFloat(f[len(f)-1], 64)
	}
	return 0, sc.Err()
}

// TestRollingUpgrade: one node restarts sending kv wire version 2 while
// the others still read only version 1. The old nodes keep that node's
// last good view (KeepStale) and count the mismatch; the upgraded node
// reads the old ones; once every node runs version 2, replication is
// complete again.
func TestRollingUpgrade(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.waitLeader(c.nodes, 30*time.Second)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	old := []*node{n1, n2}
	for _, nd := range c.nodes {
		c.mustPut(nd, agent.KVState, "release", "v1-"+nd.id)
	}
	c.waitConverged(c.nodes, 20*time.Second, agent.KVState)
	lastGood, err := views(n1, agent.KVState)
	if err != nil {
		t.Fatal(err)
	}
	var base [2]float64
	for i, o := range old {
		if base[i], err = syncCounter(o, agent.KVState, "sync_failures"); err != nil {
			t.Fatal(err)
		}
	}

	// Upgrade n3: it restarts (SIGKILL, so the others keep its view as a
	// failed node's) sending wire version 2.
	upgrade := func(nd *node) {
		c.kill(nd)
		nd.extra = []string{"--test-kv-wire-version", "2"}
		c.start(nd)
	}
	upgrade(n3)
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	var infos []agent.StateInfo
	if err := n3.api.get(bg(), "/v1/states", nil, &infos); err != nil {
		t.Fatal(err)
	}
	for _, s := range infos {
		if s.Name == agent.KVState && s.WireVersion != 2 {
			t.Fatalf("upgraded n3 reports kv wire version %d, want 2", s.WireVersion)
		}
	}
	c.mustPut(n3, agent.KVState, "release", "v2-n3")
	c.mustPut(n1, agent.KVState, "release", "v1-n1-again")

	// The upgraded node reads the old ones.
	c.waitValue([]*node{n3}, agent.KVState, n1, "release", "v1-n1-again", 10*time.Second)
	// The old nodes reject n3's version-2 frames ...
	eventually(t, "the old nodes count n3's version mismatch", 10*time.Second, func() (bool, string) {
		for i, o := range old {
			n, err := syncCounter(o, agent.KVState, "sync_failures")
			if err != nil || n <= base[i] {
				return false, fmt.Sprintf("%s: sync_failures %v (was %v, %v)", o.id, n, base[i], err)
			}
		}
		return true, ""
	})
	// ... and keep its last good view (KeepStale), even after a periodic
	// full sync has certainly come from n3 (n1 counted a failure above).
	for _, o := range old {
		m, err := views(o, agent.KVState)
		if err != nil {
			t.Fatal(err)
		}
		v, ok := m[n3.id]
		if !ok || v.Generation != lastGood[n3.id].Generation || fmt.Sprint(v.Value) != fmt.Sprint(lastGood[n3.id].Value) {
			t.Fatalf("%s's view of upgraded n3 = %+v, want the last good one %+v", o.id, v, lastGood[n3.id])
		}
	}
	// Old nodes still replicate between themselves.
	c.mustPut(n2, agent.KVState, "release", "v1-n2-again")
	c.waitValue(c.nodes, agent.KVState, n2, "release", "v1-n2-again", 10*time.Second)

	// Upgrade the rest, one at a time; then replication is complete.
	t0 := time.Now()
	for _, o := range old {
		upgrade(o)
		c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	}
	conv := c.waitConverged(c.nodes, 30*time.Second, agent.KVState)
	c.waitValue(c.nodes, agent.KVState, n3, "release", "v2-n3", time.Second)
	measured(t, "last node upgraded → kv views converged", conv)
	measured(t, "rolling upgrade of the 2 remaining nodes (kill, restart, converge)", time.Since(t0))
}
