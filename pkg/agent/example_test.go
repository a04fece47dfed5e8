package agent_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/dstate-go/dstate/pkg/agent"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
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

	sessions, err := agent.RegisterDelta(ctx, a, agent.KVDef{StateName: "sessions"}, node.StateOptions[agent.KV]{Initial: agent.KV{}})
	if err != nil {
		log.Fatal(err)
	}
	_, _, err = sessions.MutateDelta(ctx, func(m *agent.KV) agent.KVChange {
		(*m)["user-42"] = "connected"
		return agent.KVChange{Key: "user-42", Value: "connected"}
	})
	if err != nil {
		log.Fatal(err)
	}
	sessions.QueryLocal(func(v dstate.Views[agent.KV]) {
		own, _ := v.Get("n1")
		fmt.Println("n1 holds", own.Value)
	})
	// Output: n1 holds map[user-42:connected]
}
