package replicated_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/replicated"
	"github.com/dstate-go/dstate/pkg/transport"
)

// twoNodes starts n1 and n2 on loopback TCP; join announces them to each
// other as serf would (once their states are registered), and close
// releases them.
func twoNodes() (n1, n2 *node.Node, join, close func()) {
	ctx := context.Background()
	rt, err := gosched.New(gosched.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	events := dstatetest.NewTestClusterEvents()
	quiet := slog.New(slog.DiscardHandler)
	var nodes []*node.Node
	for _, id := range []dstate.NodeID{"n1", "n2"} {
		tcfg := transport.DefaultConfig()
		tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = id, "example", quiet
		tr, err := transport.New(tcfg)
		if err != nil {
			log.Fatal(err)
		}
		n, err := node.New(node.Config{ID: id, Runtime: rt, Events: events, Transport: tr, Logger: quiet})
		if err != nil {
			log.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	join = func() {
		for _, n := range nodes {
			events.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: n.ID(), Tags: map[string]string{node.TransportTag: n.Addr()}})
		}
	}
	return nodes[0], nodes[1], join, func() {
		for _, n := range nodes {
			n.Close(ctx)
		}
		rt.Close()
	}
}

// waitUntil polls cond, with a deadline, until it holds.
func waitUntil(cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// A replicated map of the users on each node: n1 writes its own map, and
// n2 holds n1's map as n1 wrote it, deletes included.
func ExampleMap() {
	ctx := context.Background()
	n1, n2, join, closeAll := twoNodes()
	defer closeAll()
	def := replicated.Map[string, string]{StateName: "presence"}
	p1, err := replicated.RegisterMap(ctx, n1, def, node.StateOptions[replicated.MapValue[string, string]]{})
	if err != nil {
		log.Fatal(err)
	}
	p2, err := replicated.RegisterMap(ctx, n2, def, node.StateOptions[replicated.MapValue[string, string]]{})
	if err != nil {
		log.Fatal(err)
	}
	join()

	p1.Set(ctx, "alice", "online")
	p1.Set(ctx, "bob", "away")
	gen, _ := p1.Delete(ctx, "bob")
	waitUntil(func() bool { v, ok := p2.Shard().Views().Get("n1"); return ok && v.Generation == gen })

	fmt.Println("n1 holds", p1.Local())
	v, ok := p2.Get("n1", "alice")
	fmt.Println("n2 sees alice on n1:", v, ok)
	fmt.Println("n2 sees", p2.Len("n1"), "user(s) on n1")
	// Output:
	// n1 holds map[alice:online]
	// n2 sees alice on n1: online true
	// n2 sees 1 user(s) on n1
}

// A replicated set of the rooms a node serves.
func ExampleSet() {
	ctx := context.Background()
	n1, n2, join, closeAll := twoNodes()
	defer closeAll()
	def := replicated.Set[string]{replicated.Map[string, struct{}]{StateName: "rooms"}}
	r1, err := replicated.RegisterSet(ctx, n1, def, node.StateOptions[replicated.MapValue[string, struct{}]]{})
	if err != nil {
		log.Fatal(err)
	}
	r2, err := replicated.RegisterSet(ctx, n2, def, node.StateOptions[replicated.MapValue[string, struct{}]]{})
	if err != nil {
		log.Fatal(err)
	}
	join()

	r1.Add(ctx, "lobby")
	r1.Add(ctx, "games")
	gen, _ := r1.Remove(ctx, "lobby")
	waitUntil(func() bool { v, ok := r2.Map().Shard().Views().Get("n1"); return ok && v.Generation == gen })

	rooms := r2.Elements("n1")
	slices.Sort(rooms)
	fmt.Println("n2 sees n1 serve", rooms, "lobby:", r2.Has("n1", "lobby"))
	// Output: n2 sees n1 serve [games] lobby: false
}

// A counter per node whose additions replicate; Sum adds up the nodes'.
func ExampleCounter() {
	ctx := context.Background()
	n1, n2, join, closeAll := twoNodes()
	defer closeAll()
	def := replicated.Counter{StateName: "requests"}
	c1, err := replicated.RegisterCounter(ctx, n1, def, node.StateOptions[int64]{})
	if err != nil {
		log.Fatal(err)
	}
	c2, err := replicated.RegisterCounter(ctx, n2, def, node.StateOptions[int64]{})
	if err != nil {
		log.Fatal(err)
	}
	join()

	c1.Add(ctx, 40)
	c1.Add(ctx, 2)
	c2.Add(ctx, 100)
	waitUntil(func() bool { return c1.Sum() == 142 && c2.Sum() == 142 })
	fmt.Println("n2 sees n1's count", c2.Get("n1"), "and a sum of", c2.Sum())
	// Output: n2 sees n1's count 42 and a sum of 142
}

// Status is the value of the register example.
type Status struct {
	Text  string `json:"text"`
	Since int64  `json:"since"`
}

// A register of each node's status: the owner's last write wins, and the
// change travels at once whatever the sync strategy (Urgency).
func ExampleRegister() {
	ctx := context.Background()
	n1, n2, join, closeAll := twoNodes()
	defer closeAll()
	def := replicated.Register[Status]{
		StateName: "status",
		Urgency:   func(old, new Status) dstate.SyncUrgency { return dstate.Immediate },
	}
	opts := node.StateOptions[Status]{Config: dstate.DefaultStateConfig()}
	opts.Config.SyncStrategy = dstate.PeriodicOnlyStrategy(time.Minute) // only urgent changes are pushed
	s1, err := replicated.RegisterRegister(ctx, n1, def, opts)
	if err != nil {
		log.Fatal(err)
	}
	s2, err := replicated.RegisterRegister(ctx, n2, def, opts)
	if err != nil {
		log.Fatal(err)
	}
	join()

	s1.Set(ctx, Status{"draining", 1})
	gen, _ := s1.Set(ctx, Status{"serving", 2})
	waitUntil(func() bool { v, ok := s2.Shard().Views().Get("n1"); return ok && v.Generation == gen })
	st, _ := s2.Get("n1")
	fmt.Printf("n2 sees n1 %s since %d\n", st.Text, st.Since)
	// Output: n2 sees n1 serving since 2
}
