package dstatetest_test

import (
	"encoding/json"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// Load is a user's own state: what one node reports about its work.
type Load struct {
	Jobs  int    `json:"jobs"`
	Queue string `json:"queue"`
}

// LoadState defines Load as a simple state, encoded as JSON.
type LoadState struct{}

func (LoadState) Name() string           { return "load" }
func (LoadState) WireVersion() uint32    { return 1 }
func (LoadState) StorageVersion() uint32 { return 1 }

func (LoadState) EncodeState(l Load) ([]byte, error) { return json.Marshal(l) }

func (LoadState) DecodeState(data []byte, version uint32) (Load, error) {
	if version != 1 {
		return Load{}, dstate.ErrUnknownVersion
	}
	var l Load
	err := json.Unmarshal(data, &l)
	return l, err
}

// ExampleNewSimCluster runs a state of one's own through the seeded fault
// simulation: three nodes over a network that drops a fifth of the
// messages and cuts n3 off for a while, then a node restarted with a
// chosen value.
func ExampleNewSimCluster() {
	sim, err := dstatetest.NewSimCluster(LoadState{}, Load{Queue: "default"}, dstatetest.SimConfig{
		Seed:   42,
		Nodes:  3,
		Faults: dstatetest.Faults{Drop: 0.2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	sim.Partition([]dstate.NodeID{"n1", "n2"}, []dstate.NodeID{"n3"})
	for range 4 {
		if _, err := sim.Mutate("n1", dstate.Default, func(l *Load) { l.Jobs++ }); err != nil {
			fmt.Println(err)
			return
		}
		sim.Run(5)
	}
	sim.Heal()
	if err := sim.Settle(300); err != nil {
		fmt.Println(err)
		return
	}
	v, _, _ := sim.Value("n3", "n1")
	fmt.Printf("n3 sees n1: %d jobs on %s\n", v.Jobs, v.Queue)

	// n2 crashes and comes back as a new incarnation with a value of its
	// own choosing.
	err = sim.RestartWith("n2", dstatetest.SimRestart{States: []dstatetest.SimStateStart{sim.Start(Load{Jobs: 7, Queue: "batch"})}})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := sim.Settle(300); err != nil {
		fmt.Println(err)
		return
	}
	v, _, _ = sim.Value("n1", "n2")
	fmt.Printf("n1 sees n2: %d jobs on %s\n", v.Jobs, v.Queue)
	fmt.Println("history clean:", sim.HistoryError() == nil)
	// Output:
	// n3 sees n1: 4 jobs on default
	// n1 sees n2: 7 jobs on batch
	// history clean: true
}
