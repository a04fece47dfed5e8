package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dstate-go/dstate/pkg/agent"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// The README's Embedding section shows Online and the body of
// Example_threeNodes (readme_test.go checks it).

type Online struct{ dstate.Versions } // a custom state: the users online on a node

func (Online) Name() string                           { return "online" }
func (Online) EncodeState(s []string) ([]byte, error) { return json.Marshal(s) }
func (Online) DecodeState(b []byte, _ uint32) (s []string, err error) {
	err = json.Unmarshal(b, &s)
	return s, err
}

// Three agents in one process on free loopback ports, with a custom state
// kept in their Raft log.
func Example_threeNodes() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "dstate-example-")
	defer os.RemoveAll(dir)
	nodes, online := []*agent.Agent{}, []*node.Shard[[]string, []string]{}
	for _, id := range []string{"n1", "n2", "n3"} {
		cfg := agent.LocalConfig(filepath.Join(dir, id)) // loopback, free ports; node ID id
		if id != "n1" {
			cfg.Join, cfg.BootstrapExpect = []string{nodes[0].Addrs().Serf}, 0 // n1's Raft group, not a new one
		}
		a, err := agent.Start(ctx, cfg)
		if err == nil {
			err = a.WaitReady(ctx) // joined, a Raft leader known
		}
		if err != nil {
			log.Fatal(err)
		}
		defer a.Stop(ctx) // n3 leaves first, n1 last
		s, err := agent.Register(ctx, a, Online{}, node.StateOptions[[]string]{Config: dstate.StateConfig{Durability: dstate.Raft}})
		if err != nil {
			log.Fatal(err)
		}
		nodes, online = append(nodes, a), append(online, s)
	}
	if _, _, err := online[0].Mutate(ctx, func(s *[]string) { *s = append(*s, "alice") }); err != nil {
		log.Fatal(err)
	}
	if err := online[2].QueryDurable(ctx, func(all map[dstate.NodeID]*dstate.StateObject[[]string]) {
		fmt.Println("n3 reads n1's users through Raft:", all["n1"].Value)
	}); err != nil {
		log.Fatal(err)
	}
	// Output: n3 reads n1's users through Raft: [alice]
}
