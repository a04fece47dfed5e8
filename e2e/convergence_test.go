package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// TestConvergence: writes on every node become visible on every node, and
// `dstatectl dump` prints the same views on every node.
func TestConvergence(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d-nodes", n), func(t *testing.T) {
			c := newCluster(t, n, clusterOpts{})
			formed := c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
			measured(t, fmt.Sprintf("%d nodes: every member alive everywhere after the last start", n), formed)
			c.waitLeader(c.nodes, 30*time.Second)
			c.waitReady(c.nodes, 30*time.Second)

			start := time.Now()
			for _, nd := range c.nodes {
				for i := range 3 {
					c.mustPut(nd, agent.KVState, fmt.Sprintf("k%d", i), fmt.Sprintf("%s-%d", nd.id, i))
					c.mustPut(nd, agent.DurableKVState, fmt.Sprintf("k%d", i), fmt.Sprintf("%s-%d", nd.id, i))
				}
			}
			for _, owner := range c.nodes {
				c.waitValue(c.nodes, agent.KVState, owner, "k2", owner.id+"-2", 20*time.Second)
				c.waitValue(c.nodes, agent.DurableKVState, owner, "k2", owner.id+"-2", 20*time.Second)
			}
			c.waitConverged(c.nodes, 20*time.Second, agent.KVState, agent.DurableKVState)
			measured(t, fmt.Sprintf("%d nodes: writes on every node (kv and durable-kv) visible everywhere", n), time.Since(start))

			// dump, through the CLI, agrees everywhere.
			for _, state := range []string{agent.KVState, agent.DurableKVState} {
				var ref []viewKey
				for _, nd := range c.nodes {
					out, err := c.cli(nd, "--format", "json", "dump", state)
					if err != nil {
						t.Fatal(err)
					}
					var d agent.StateDump
					if err := json.Unmarshal([]byte(out), &d); err != nil {
						t.Fatalf("dump on %s: %v\n%s", nd.id, err, out)
					}
					got := keyed(d)
					if len(got) != n {
						t.Fatalf("dump %s on %s holds %d views, want %d", state, nd.id, len(got), n)
					}
					if ref == nil {
						ref = got
					} else if !reflect.DeepEqual(got, ref) {
						t.Fatalf("dump %s on %s = %v, on %s = %v", state, nd.id, got, c.nodes[0].id, ref)
					}
				}
			}
			// The linearizable dump holds every durable write.
			out, err := c.cli(c.nodes[n-1], "--format", "json", "dump", "--consistent", agent.DurableKVState)
			if err != nil {
				t.Fatal(err)
			}
			var d agent.StateDump
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatal(err)
			}
			if d.Consistency != "linearizable" || len(d.Views) != n {
				t.Fatalf("consistent dump: consistency %q with %d views, want linearizable with %d", d.Consistency, len(d.Views), n)
			}
			for _, v := range d.Views {
				m, _ := v.Value.(map[string]any)
				for i := range 3 {
					if want := fmt.Sprintf("%s-%d", v.Node, i); m[fmt.Sprintf("k%d", i)] != want {
						t.Fatalf("consistent dump: %s's k%d = %v, want %s", v.Node, i, m[fmt.Sprintf("k%d", i)], want)
					}
				}
			}
		})
	}
}

// viewKey is what must agree between dumps of the same state on different
// nodes (not how long ago each synced).
type viewKey struct {
	Node, Generation string
	Value            string
}

func keyed(d agent.StateDump) []viewKey {
	out := make([]viewKey, 0, len(d.Views))
	for _, v := range d.Views {
		b, _ := json.Marshal(v.Value)
		out = append(out, viewKey{Node: v.Node, Generation: v.Generation, Value: string(b)})
	}
	return out
}
