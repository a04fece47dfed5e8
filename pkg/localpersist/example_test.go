package localpersist_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/localpersist"
)

// motd is a state definition: a string named "motd", sent and stored as
// its bytes in version 1.
type motd struct{ dstate.Versions }

func (motd) Name() string                                   { return "motd" }
func (motd) EncodeState(s string) ([]byte, error)           { return []byte(s), nil }
func (motd) DecodeState(b []byte, _ uint32) (string, error) { return string(b), nil }

// A DB is a dstate.EnvelopeStore: a host (node.Config.Stores) persists
// every state of Local durability through it, and dstate.PersistenceFor
// gives one state its typed persistence, as here.
func Example() {
	dir, _ := os.MkdirTemp("", "localpersist")
	defer os.RemoveAll(dir)
	db, err := localpersist.Open(filepath.Join(dir, "states.db"), localpersist.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	var p dstate.StatePersistence[string] = dstate.PersistenceFor[string](db, "n1", motd{dstate.Versions{Wire: 1}})
	ctx := context.Background()
	_ = p.Save(ctx, &dstate.StateObject[string]{Generation: dstate.Generation{Incarnation: 1, Age: 1}, StorageVersion: 1, Value: "hello"}, nil)
	got, _ := p.Load(ctx)
	fmt.Println(got.Generation, got.Value)
	// Output: v1:1 hello
}
