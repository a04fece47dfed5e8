package transport_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/transport"
)

// Two transports on loopback: b receives what a sends.
func Example() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(id dstate.NodeID, deliver func(dstate.NodeID, []byte)) *transport.Transport {
		cfg := transport.DefaultConfig() // 127.0.0.1 on a free port
		cfg.NodeID, cfg.ClusterName, cfg.Logger = id, "example", quiet
		tr, err := transport.New(cfg)
		if err != nil {
			log.Fatal(err)
		}
		if err := tr.Start(deliver); err != nil {
			log.Fatal(err)
		}
		return tr
	}
	got := make(chan string, 1)
	b := start("b", func(from dstate.NodeID, frame []byte) { got <- fmt.Sprintf("%s sent %q", from, frame) })
	a := start("a", func(dstate.NodeID, []byte) {})
	defer b.Close(context.Background())
	defer a.Close(context.Background())

	a.SetPeer("b", b.Addr()) // connects in the background, retrying
	if err := a.Send("b", []byte("hello")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-got)
	// Output: a sent "hello"
}
