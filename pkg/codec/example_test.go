package codec_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"

	"github.com/dstate-go/dstate/pkg/codec"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// Status is a plain Go value replicated whole.
type Status struct {
	Text  string `json:"text"`
	Users int    `json:"users"`
}

// A simple state in one line: a name and a codec. Registered on a node,
// its value replicates whole (on loopback TCP here).
func ExampleSimple() {
	ctx := context.Background()
	status := codec.Simple("status", codec.CBOR[Status]())

	rt, err := gosched.New(gosched.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	tcfg := transport.DefaultConfig()
	tcfg.NodeID, tcfg.Logger = "n1", slog.New(slog.DiscardHandler)
	tr, err := transport.New(tcfg)
	if err != nil {
		log.Fatal(err)
	}
	n, err := node.New(node.Config{ID: "n1", Runtime: rt, Events: dstatetest.NewTestClusterEvents(), Transport: tr, Logger: tcfg.Logger})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close(ctx)
	shard, err := node.Register(ctx, n, status, node.StateOptions[Status]{})
	if err != nil {
		log.Fatal(err)
	}
	_, v, err := shard.Mutate(ctx, func(s *Status) { *s = Status{Text: "serving", Users: 42} })
	fmt.Println(v, err)
	// Output: {serving 42} <nil>
}

// Changing the encoding: version 2 is CBOR, and what version 1 wrote in
// JSON (a node not yet upgraded, or the disk) still decodes.
func ExampleSimpleState_Migrate() {
	v1 := codec.Simple("status", codec.JSON[Status]())
	old, _ := v1.EncodeState(Status{Text: "serving", Users: 7})

	v2 := codec.Simple("status", codec.CBOR[Status]())
	v2.Version = 2
	v2.Migrate = func(data []byte, from uint32) (Status, error) {
		if from != 1 {
			return Status{}, dstate.UnknownVersionError(from)
		}
		return codec.JSON[Status]().Decode(data)
	}
	s, err := dstate.DecodeStored(v2, old, 1)
	fmt.Println(s, err)
	_, err = dstate.DecodeStored(v2, old, 3)
	fmt.Println(err != nil)
	// Output:
	// {serving 7} <nil>
	// true
}
