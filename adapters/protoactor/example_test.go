package protoactor_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dstate-go/dstate/adapters/protoactor"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// Two nodes whose state engines run as actors of an application's
// proto.actor system. An ordinary proto.actor actor of that system writes
// its state through the replicated counter of n1, and n2 sees it. Both
// nodes share one process and talk over loopback TCP; membership comes from
// a hand-driven event source here (a real cluster uses pkg/serfevents).
func Example() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)

	// The application's actor system, and the dstate runtime on it.
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	rt, err := protoactor.New(protoactor.Options{System: system, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	events := dstatetest.NewTestClusterEvents()
	counters := map[dstate.NodeID]*node.Shard[dstatetest.Counter, dstatetest.Counter]{}
	for _, id := range []dstate.NodeID{"n1", "n2"} {
		tcfg := transport.DefaultConfig() // 127.0.0.1 on a free port
		tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = id, "example", quiet
		tr, err := transport.New(tcfg)
		if err != nil {
			log.Fatal(err)
		}
		n, err := node.New(node.Config{ID: id, Runtime: rt, Events: events, Transport: tr, Logger: quiet})
		if err != nil {
			log.Fatal(err)
		}
		defer n.Close(ctx)
		counters[id], err = node.Register(ctx, n, dstatetest.CounterState{}, node.StateOptions[dstatetest.Counter]{})
		if err != nil {
			log.Fatal(err)
		}
		events.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: id, Tags: map[string]string{node.TransportTag: n.Addr()}})
	}

	// An application actor on n1 keeps its state in the replicated counter.
	logins := system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if user, ok := c.Message().(string); ok {
			gen, _, err := counters["n1"].Mutate(ctx, func(s *dstatetest.Counter) { s.Count++; s.Label = user })
			if err != nil {
				c.Respond(err)
				return
			}
			c.Respond(gen.Age)
		}
	}))
	defer func() { _ = system.Root.StopFuture(logins).Wait() }()
	age, err := system.Root.RequestFuture(logins, "alice", 5*time.Second).Result()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("n1 recorded the login at age", age)

	// Poll, with a deadline, until n2 holds that generation of n1's state.
	seen := func() (*dstate.StateViewObject[dstatetest.Counter], bool) {
		v, ok := counters["n2"].Views().Get("n1")
		return v, ok && v.Generation.Age == age
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	v, ok := seen()
	for !ok {
		select {
		case <-tick.C:
			v, ok = seen()
		case <-deadline:
			log.Fatal("n2 never saw the login")
		}
	}
	fmt.Printf("n2 sees n1's count %d, last user %s\n", v.Value.Count, v.Value.Label)
	// Output:
	// n1 recorded the login at age 1
	// n2 sees n1's count 1, last user alice
}
