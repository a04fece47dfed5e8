package agent_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/dstate-go/dstate/pkg/agent"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/replicated"
)

// A whole node embedded in an application: membership, transport, Raft and
// the admin API from one Config, plus a state of the application's own.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "dstate-example-")
	defer os.RemoveAll(dir)
	cfg := agent.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.BootstrapExpect, cfg.LogLevel = "n1", dir, 1, "error"
	cfg.SerfAddr, cfg.TransportAddr, cfg.RaftAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	a, err := agent.Start(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer a.Stop(ctx)

	// The sessions are a replicated map of the node's own (the built-in kv
	// states are one too); the handle writes this node's map and reads any
	// node's.
	shard, err := agent.RegisterDelta(ctx, a, agent.KVDef{StateName: "sessions"}, node.StateOptions[agent.KV]{})
	if err != nil {
		log.Fatal(err)
	}
	sessions := replicated.NewMapShard(shard)
	if _, err := sessions.Set(ctx, "user-42", "connected"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("n1 holds", sessions.Local())
	// Output: n1 holds map[user-42:connected]
}
