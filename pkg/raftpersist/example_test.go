package raftpersist_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/raftpersist"
)

// counter is a state definition: an int named "counter", sent and stored
// as decimal text in version 1.
type counter struct{ dstate.Versions }

func (counter) Name() string                      { return "counter" }
func (counter) EncodeState(n int) ([]byte, error) { return []byte(fmt.Sprint(n)), nil }
func (counter) DecodeState(b []byte, _ uint32) (int, error) {
	var n int
	_, err := fmt.Sscan(string(b), &n)
	return n, err
}

// A single-server cluster: bootstrap, save a state object, load it back.
// A Store is a dstate.EnvelopeStore: a host (node.Config.Stores) persists
// every state of Raft durability through it, and dstate.PersistenceFor
// gives one state its typed persistence, as here.
func Example() {
	dir, err := os.MkdirTemp("", "raftpersist-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	cfg := raftpersist.DefaultConfig()
	cfg.NodeID = "node-1"
	cfg.DataDir = dir
	cfg.Listener = ln
	cfg.Bootstrap = []raftpersist.Server{{ID: "node-1", Address: ln.Addr().String()}}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := raftpersist.New(cfg)
	if err != nil {
		panic(err)
	}
	defer store.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := store.WaitLeader(ctx); err != nil {
		panic(err)
	}
	var p dstate.StatePersistence[int] = dstate.PersistenceFor[int](store, store.ID(), counter{dstate.Versions{Wire: 1}})
	obj := &dstate.StateObject[int]{Generation: dstate.Generation{Incarnation: 1, Age: 1}, StorageVersion: 1, Value: 42}
	if err := p.Save(ctx, obj, nil); err != nil {
		panic(err)
	}
	got, err := p.Load(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Generation, got.Value)
	// Output: v1:1 42
}
