package protoactor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dstate-go/dstate/adapters/protoactor"
	"github.com/dstate-go/dstate/pkg/agent"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// Sessions is the state an application actor used to keep in a field:
// who logged in on this node, and when.
type Sessions struct {
	Users map[string]int64 `json:"users"`
}

// SessionsState is the dstate definition of Sessions: a name, versions
// and an encoding.
type SessionsState struct{ dstate.Versions }

func (SessionsState) Name() string                           { return "sessions" }
func (SessionsState) EncodeState(s Sessions) ([]byte, error) { return json.Marshal(s) }
func (SessionsState) DecodeState(b []byte, _ uint32) (s Sessions, err error) {
	err = json.Unmarshal(b, &s)
	return s, err
}

// Login, LoggedIn and WhoIsOnline are the application actor's messages.
type (
	Login struct {
		User string
		At   int64
	}
	LoggedIn    struct{ Err error }
	WhoIsOnline struct{}
)

// online lists the users of every node's sessions, sorted.
func online(v dstate.Views[Sessions]) []string {
	var users []string
	for _, view := range v.All {
		users = append(users, slices.Collect(maps.Keys(view.Value.Users))...)
	}
	slices.Sort(users)
	return users
}

// A whole agent (membership, transport, Raft, stores, admin API) whose
// state engines run as actors of the application's proto.actor system, next
// to an application actor that keeps its state in a replicated, durable
// state. The README's proto.actor section is this function's body
// (readme_test.go checks it).
func Example_agent() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sessions-")
	defer os.RemoveAll(dir)

	system := actor.NewActorSystem()                              // the system you already have
	rt, err := protoactor.New(protoactor.Options{System: system}) // dstate's actors join it
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close() // last: stops dstate's actors, leaves yours running

	// A whole node on that runtime. In production: agent.DefaultConfig()
	// with NodeID, DataDir and Join set.
	a, err := agent.Start(ctx, agent.LocalConfig(dir), agent.WithRuntime(rt))
	if err != nil {
		log.Fatal(err)
	}
	defer a.Stop(ctx) // before rt.Close: leaves the cluster, closes the stores

	// The state your actor used to keep in a field, now on every node and
	// in the node's local store (dstate.Raft: in the cluster's Raft log).
	sessions, err := agent.Register(ctx, a, SessionsState{}, node.StateOptions[Sessions]{
		Config:  dstate.StateConfig{Durability: dstate.Local},
		Initial: Sessions{Users: map[string]int64{}},
	})
	if err != nil {
		log.Fatal(err)
	}

	pid := system.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *Login: // written here, replicated to every node
			_, _, err := sessions.Mutate(ctx, func(s *Sessions) { s.Users[m.User] = m.At })
			c.Respond(&LoggedIn{Err: err})
		case *WhoIsOnline: // every node's sessions, at most a second stale
			if err := sessions.Query(ctx, time.Second, func(v dstate.Views[Sessions]) { c.Respond(online(v)) }); err != nil {
				c.Respond(err)
			}
		}
	}))
	defer func() { _ = system.Root.StopFuture(pid).Wait() }() // first: your actors, then the agent, then rt

	res, err := system.Root.RequestFuture(pid, &Login{User: "alice", At: 1}, 5*time.Second).Result()
	if err != nil || res.(*LoggedIn).Err != nil {
		log.Fatal(err, res)
	}
	users, err := system.Root.RequestFuture(pid, &WhoIsOnline{}, 5*time.Second).Result()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("online:", users)
	// Output: online: [alice]
}
