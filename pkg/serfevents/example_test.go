package serfevents_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// Two nodes on loopback: n2 knows only n1's gossip address, and n1 learns
// n2's transport address from the NodeJoined event's tags.
func Example() {
	start := func(id dstate.NodeID, transport string, seeds ...string) *serfevents.Membership {
		cfg := serfevents.LocalConfig() // 127.0.0.1, a free port, fast timing
		cfg.NodeID = id
		cfg.Seeds = seeds
		tags, err := serfevents.NodeTags{Transport: transport, Protocol: 1,
			States: map[string]uint32{"gauges": 1}}.Tags()
		if err != nil {
			panic(err)
		}
		cfg.Tags = tags
		m, err := serfevents.New(cfg)
		if err != nil {
			panic(err)
		}
		return m
	}
	n1 := start("n1", "127.0.0.1:7001")
	defer n1.Shutdown()

	joined := make(chan dstate.ClusterEvent, 8)
	if _, err := n1.Subscribe(func(ev dstate.ClusterEvent) {
		if ev.Kind == dstate.NodeJoined && ev.Node != n1.ID() {
			joined <- ev
		}
	}); err != nil {
		panic(err)
	}

	n2 := start("n2", "127.0.0.1:7002", n1.LocalNode().Addr)
	ev := <-joined
	peer, _ := serfevents.ParseNodeTags(ev.Tags)
	fmt.Println(ev, "transport", peer.Transport, "states", peer.States)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n2.Close(ctx); err != nil { // leave gracefully, then stop
		panic(err)
	}
	for _, m := range n1.Members() {
		fmt.Println(m.ID, m.Status)
	}
	// Output:
	// joined(n2) transport 127.0.0.1:7002 states map[gauges:1]
	// n1 alive
	// n2 left
}

func ExampleEncodeStates() {
	tag, err := serfevents.EncodeStates(map[string]uint32{"sessions": 2, "gauges": 1})
	if err != nil {
		panic(err)
	}
	fmt.Println(tag)
	states, _ := serfevents.DecodeStates(tag)
	fmt.Println(states["sessions"])
	// Output:
	// gauges=1,sessions=2
	// 2
}
