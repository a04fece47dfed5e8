package dstatetest_test

import (
	"fmt"
	"testing"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// TestSimStreamedSnapshotsWithFaults: nodes whose views stream in many
// chunks converge over a network that drops, duplicates and reorders
// messages, while owners mutate, nodes join and restart, for many seeds.
func TestSimStreamedSnapshotsWithFaults(t *testing.T) {
	initial := dstatetest.NewGauges()
	for i := range 200 {
		initial.Values[fmt.Sprintf("key-%04d", i)] = int64(i)
	}
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			sim, err := dstatetest.NewDeltaSimCluster(dstatetest.ChunkedGaugesState{}, initial, dstatetest.SimConfig{
				Seed: seed, Nodes: 3, SnapshotChunk: 128, DigestInterval: dstatetest.DefaultSimTick * 20,
				Faults: dstatetest.Faults{Drop: 0.05, Duplicate: 0.05, Reorder: 0.1},
			})
			if err != nil {
				t.Fatal(err)
			}
			sim.SetFormat(dstatetest.GaugesView.String)
			for i := range 30 {
				if _, err := sim.MutateDelta(dstate.NodeID(fmt.Sprint("n", 1+i%3)), dstatetest.Set(fmt.Sprint("m", i), int64(i))); err != nil {
					t.Fatal(err)
				}
				sim.Run(2)
				if i == 10 {
					if _, err := sim.AddNode(); err != nil {
						t.Fatal(err)
					}
				}
				if i == 20 {
					if err := sim.Restart("n2"); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := sim.SetFaults(dstatetest.Faults{}); err != nil {
				t.Fatal(err)
			}
			if err := sim.Settle(20_000); err != nil {
				t.Fatal(err)
			}
			chunks := uint64(0)
			for _, id := range sim.Nodes() {
				chunks += sim.Engine(id).Metrics().ChunksReceived
			}
			if chunks == 0 {
				t.Fatal("no view was streamed")
			}
		})
	}
}
