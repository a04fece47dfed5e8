package node_test

import (
	"context"
	"fmt"
	"log"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// A presence service: each node counts the users logged in to it, and n2
// reacts as soon as logins on n1 reach it, without polling.
func ExampleShard_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt, err := gosched.New(gosched.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	events := dstatetest.NewTestClusterEvents()
	sessions := map[dstate.NodeID]*node.Shard[dstatetest.Counter, dstatetest.Counter]{}
	for _, id := range []dstate.NodeID{"n1", "n2"} {
		tcfg := transport.DefaultConfig()
		tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = id, "example", quietLogger()
		tr, err := transport.New(tcfg)
		if err != nil {
			log.Fatal(err)
		}
		n, err := node.New(node.Config{ID: id, Runtime: rt, Events: events, Transport: tr, Logger: quietLogger()})
		if err != nil {
			log.Fatal(err)
		}
		defer n.Close(ctx)
		if sessions[id], err = node.Register(ctx, n, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{}); err != nil {
			log.Fatal(err)
		}
		events.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: id, Tags: map[string]string{node.TransportTag: n.Addr()}})
	}

	// n2 watches n1's sessions (the initial list is empty: nothing has
	// arrived from n1 yet).
	logins := make(chan node.Change[dstatetest.Counter])
	go func() {
		opts := node.WatchOptions{Nodes: []dstate.NodeID{"n1"}}
		for change, err := range sessions["n2"].Watch(ctx, opts) {
			if err != nil {
				return // ctx ended
			}
			logins <- change
		}
	}()

	for _, user := range []string{"alice", "bob"} {
		if _, _, err := sessions["n1"].Mutate(ctx, func(c *dstatetest.Counter) { c.Count++; c.Label = user }); err != nil {
			log.Fatal(err)
		}
		c := <-logins
		for c.View.Value.Count == 0 {
			c = <-logins // n1's state from before any login, when it arrived after the watch began
		}
		fmt.Printf("n2: %s logged in on %s (%d there now, age %d)\n", c.View.Value.Label, c.Node, c.View.Value.Count, c.Generation.Age)
	}
	// Output:
	// n2: alice logged in on n1 (1 there now, age 1)
	// n2: bob logged in on n1 (2 there now, age 2)
}
