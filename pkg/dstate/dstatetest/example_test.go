package dstatetest_test

import (
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// ExampleSimCluster drives three simulated nodes over a lossy network: a
// counter mutation on n1 reaches the others, a crash-restart of n1 gives it
// a new incarnation, and the cluster converges again.
func ExampleSimCluster() {
	c, err := dstatetest.NewExampleSimCluster(dstatetest.SimConfig{
		Seed:   1,
		Nodes:  3,
		States: dstatetest.SimCounter,
		Faults: dstatetest.Faults{Drop: 0.3, Reorder: 0.2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for range 3 {
		if _, err := c.MutateCounter("n1", dstate.Default, func(x *dstatetest.Counter) { x.Count += 10 }); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := c.Settle(200); err != nil {
		fmt.Println(err)
		return
	}
	show := func() {
		for _, obs := range c.Live() {
			v, _ := c.View(obs, "n1", "counter")
			fmt.Printf("%s sees n1 at %s = %s\n", obs, v.Generation, v.Value)
		}
	}
	show()
	_ = c.Restart("n1") // crash and start again, empty, as a new incarnation
	if err := c.Settle(200); err != nil {
		fmt.Println(err)
		return
	}
	show()
	// Output:
	// n1 sees n1 at v1000000:3 = 30
	// n2 sees n1 at v1000000:3 = 30
	// n3 sees n1 at v1000000:3 = 30
	// n1 sees n1 at v1002800:0 = 0
	// n2 sees n1 at v1002800:0 = 0
	// n3 sees n1 at v1002800:0 = 0
}
