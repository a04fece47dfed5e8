package localpersist_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/localpersist"
)

type text struct{}

func (text) StorageVersion() uint32                         { return 1 }
func (text) EncodeState(s string) ([]byte, error)           { return []byte(s), nil }
func (text) DecodeState(b []byte, _ uint32) (string, error) { return string(b), nil }

func Example() {
	dir, _ := os.MkdirTemp("", "localpersist")
	defer os.RemoveAll(dir)
	db, err := localpersist.Open(filepath.Join(dir, "states.db"), localpersist.Options{})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	var p dstate.StatePersistence[string] = localpersist.For[string](db, "motd", text{})
	ctx := context.Background()
	_ = p.Save(ctx, &dstate.StateObject[string]{Generation: dstate.Generation{Incarnation: 1, Age: 1}, StorageVersion: 1, Value: "hello"}, nil)
	got, _ := p.Load(ctx)
	fmt.Println(got.Generation, got.Value)
	// Output: v1:1 hello
}
