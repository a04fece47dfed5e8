package node_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// Three nodes on loopback TCP: a mutation on n1 becomes visible on n3.
// Membership comes from a hand-driven event source here; a real cluster
// uses pkg/serfevents.
func Example() {
	ctx := context.Background()
	rt, err := gosched.New(gosched.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	events := dstatetest.NewTestClusterEvents()

	nodes := map[dstate.NodeID]*node.Node{}
	counters := map[dstate.NodeID]*node.Shard[dstatetest.Counter, dstatetest.Counter]{}
	for _, id := range []dstate.NodeID{"n1", "n2", "n3"} {
		tcfg := transport.DefaultConfig()
		tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = id, "example", quietLogger()
		tr, err := transport.New(tcfg) // binds 127.0.0.1 on a free port
		if err != nil {
			log.Fatal(err)
		}
		n, err := node.New(node.Config{ID: id, Runtime: rt, Events: events, Transport: tr, Logger: quietLogger()})
		if err != nil {
			log.Fatal(err)
		}
		defer n.Close(ctx)
		counters[id], err = node.Register(ctx, n, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{})
		if err != nil {
			log.Fatal(err)
		}
		nodes[id] = n
	}
	// Announce every node with its transport address, as serf would.
	for id, n := range nodes {
		events.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: id, Tags: map[string]string{node.TransportTag: n.Addr()}})
	}

	gen, _, err := counters["n1"].Mutate(ctx, func(c *dstatetest.Counter) { c.Count = 42 })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("n1 wrote age", gen.Age)

	// Wait (with a deadline) until n3 holds that generation of n1's state.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if v, ok := counters["n3"].Views().Get("n1"); ok && v.Generation == gen {
			break
		}
		time.Sleep(time.Millisecond)
	}
	err = counters["n3"].Query(ctx, time.Minute, func(v dstate.Views[dstatetest.Counter]) {
		view, _ := v.Get("n1")
		fmt.Println("n3 sees n1's count", view.Value.Count)
	})
	fmt.Println("query error:", err)
	// Output:
	// n1 wrote age 1
	// n3 sees n1's count 42
	// query error: <nil>
}
