package e2e

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// ackedWrite is a durable-kv write the agent acknowledged.
type ackedWrite struct{ node, key, value string }

// TestRaftLeaderKill: SIGKILL the Raft leader during a stream of durable
// writes on every node; a new leader is elected, writes continue, and a
// linearizable dump afterwards holds every acknowledged write.
func TestRaftLeaderKill(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	leader := c.node(c.waitLeader(c.nodes, 30*time.Second))
	c.waitReady(c.nodes, 30*time.Second)

	var (
		mu       sync.Mutex
		acked    []ackedWrite
		afterNew atomic.Int64 // acknowledged after the new leader was seen
		newSeen  atomic.Bool
		unknown  atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, nd := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				key, value := fmt.Sprintf("w%05d", seq), fmt.Sprintf("%s-%d", nd.id, seq)
				wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := nd.api.put(wctx, agent.DurableKVState, key, value)
				wcancel()
				switch {
				case err == nil:
					mu.Lock()
					acked = append(acked, ackedWrite{nd.id, key, value})
					mu.Unlock()
					if newSeen.Load() && nd != leader {
						afterNew.Add(1)
					}
				case refused(err) || notReady(err):
					// Not attempted: the agent is down or not ready; pace the retries.
					select {
					case <-ctx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				default:
					unknown.Add(1)
				}
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	eventually(t, "30 durable writes are acknowledged", 30*time.Second, func() (bool, string) {
		return count() >= 30, fmt.Sprint(count())
	})

	t.Logf("killing the raft leader %s after %d acknowledged writes", leader.id, count())
	killed := time.Now()
	c.kill(leader)
	var survivors []*node
	for _, nd := range c.nodes {
		if nd != leader {
			survivors = append(survivors, nd)
		}
	}
	newLeader := c.waitLeader(survivors, 30*time.Second)
	newSeen.Store(true)
	measured(t, "SIGKILL of the raft leader → a new leader named by both survivors", time.Since(killed))
	eventually(t, "writes continue under the new leader", 30*time.Second, func() (bool, string) {
		return afterNew.Load() >= 30, fmt.Sprint(afterNew.Load())
	})
	measured(t, "SIGKILL of the raft leader → 30 more durable writes acknowledged", time.Since(killed))
	cancel()
	wg.Wait()
	t.Logf("new leader %s; %d writes acknowledged, %d with unknown outcome", newLeader, count(), unknown.Load())

	c.start(leader)
	c.waitReady(c.nodes, 30*time.Second)
	for _, nd := range c.nodes {
		var d agent.StateDump
		eventually(t, "a linearizable dump from "+nd.id, 20*time.Second, func() (bool, string) {
			var err error
			d, err = nd.api.dump(agent.DurableKVState, url.Values{"consistent": {"true"}})
			return err == nil, fmt.Sprint(err)
		})
		if d.Consistency != "linearizable" {
			t.Fatalf("%s: consistency %q", nd.id, d.Consistency)
		}
		stored := map[string]map[string]any{}
		for _, v := range d.Views {
			stored[v.Node], _ = v.Value.(map[string]any)
		}
		missing := 0
		for _, w := range acked {
			if stored[w.node][w.key] != w.value {
				missing++
				if missing <= 5 {
					t.Errorf("%s's linearizable dump: %s's %s = %v, acknowledged %s", nd.id, w.node, w.key, stored[w.node][w.key], w.value)
				}
			}
		}
		if missing > 0 {
			t.Fatalf("%d of %d acknowledged writes missing from %s's linearizable dump", missing, len(acked), nd.id)
		}
	}
}
