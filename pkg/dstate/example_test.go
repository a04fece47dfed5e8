package dstate_test

import (
	"fmt"
	"log"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// Two engines and no network: the host's job (carrying each action's
// message as bytes to the other node) done by hand.
func Example() {
	clock := dstatetest.NewTestClock()
	cfg := dstate.DefaultStateConfig() // active push
	n1, err := dstate.NewSimpleEngine(dstatetest.CounterState{}, "n1", cfg, clock, dstatetest.Counter{})
	if err != nil {
		log.Fatal(err)
	}
	n2, err := dstate.NewSimpleEngine(dstatetest.CounterState{}, "n2", cfg, clock, dstatetest.Counter{})
	if err != nil {
		log.Fatal(err)
	}
	deliver := func(to *dstate.Engine[dstatetest.Counter, dstatetest.Counter], acts []dstate.Action) {
		for _, a := range acts {
			frame := dstate.EncodeWire(&a.Message) // what a transport carries
			m, err := dstate.DecodeWire(frame)
			if err != nil {
				log.Fatal(err)
			}
			to.HandleWire(&m)
		}
	}
	deliver(n2, n1.OnNodeJoined("n2")) // both sides push their snapshot on join
	deliver(n1, n2.OnNodeJoined("n1"))

	res := n1.Mutate(func(c *dstatetest.Counter) { c.Count = 7 }, dstate.Default)
	fmt.Println(res.Actions[0])
	deliver(n2, res.Actions)

	view, _ := n2.Views().Get("n1")
	fmt.Println("n2 sees n1:", view.Value.Count, view.Generation)
	fmt.Println("fresh:", len(n2.Query(0).Stale) == 0)
	// Output:
	// broadcast(FullSnapshot(counter from n1 v1000000:1 wire=1 2B))
	// n2 sees n1: 7 v1000000:1
	// fresh: true
}
