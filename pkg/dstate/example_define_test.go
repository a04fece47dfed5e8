package dstate_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// greeting is a minimal simple state: a string named "greeting", sent and
// stored as its bytes. Versions supplies WireVersion and StorageVersion.
type greeting struct{ dstate.Versions }

func (greeting) Name() string                                   { return "greeting" }
func (greeting) EncodeState(s string) ([]byte, error)           { return []byte(s), nil }
func (greeting) DecodeState(b []byte, _ uint32) (string, error) { return string(b), nil }

// tally is a minimal delta state: counts by key (the owned value) whose view
// is their total; a change adds to one key, and its delta is the amount
// added. It has no SyncUrgency: every change travels as the state's
// SyncStrategy says.
type tally struct{ dstate.Versions }

// add is tally's change: n added to key.
type add struct {
	key string
	n   int64
}

func (tally) Name() string { return "tally" }

func (tally) ProjectView(s *map[string]int64) int64 {
	var sum int64
	for _, n := range *s {
		sum += n
	}
	return sum
}

func (tally) ProjectDelta(c add) int64             { return c.n }
func (tally) ApplyDelta(v, d int64) (int64, error) { return v + d, nil }
func (tally) EncodeView(v int64) ([]byte, error)   { return binary.AppendVarint(nil, v), nil }
func (tally) DecodeView(b []byte, _ uint32) (int64, error) {
	v, n := binary.Varint(b)
	if n <= 0 || n != len(b) {
		return 0, dstate.MalformedError("tally: bad varint")
	}
	return v, nil
}
func (t tally) EncodeDelta(d int64) ([]byte, error)           { return t.EncodeView(d) }
func (t tally) DecodeDelta(b []byte, v uint32) (int64, error) { return t.DecodeView(b, v) }
func (tally) EncodeState(s map[string]int64) ([]byte, error)  { return json.Marshal(s) }
func (tally) DecodeState(b []byte, _ uint32) (map[string]int64, error) {
	var s map[string]int64
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, dstate.MalformedError("tally: %v", err)
	}
	return s, nil
}

// The minimal method set: a simple state writes Name, EncodeState and
// DecodeState; a delta state adds its projections and their encodings.
// Both embed dstate.Versions for their versions; SyncUrgency and
// MigrateState are optional.
func Example_minimalDefinitions() {
	var _ dstate.DistributedState[string] = greeting{}
	var _ dstate.DeltaDistributedState[map[string]int64, int64, int64, add] = tally{}

	g := greeting{dstate.Versions{Wire: 1}}          // sent and stored in version 1
	t := tally{dstate.Versions{Wire: 2, Storage: 1}} // sent in version 2, stored in version 1
	fmt.Println(g.WireVersion(), g.StorageVersion(), t.WireVersion(), t.StorageVersion())

	clock := dstatetest.NewTestClock()
	cfg := dstate.DefaultStateConfig()
	n1, err := dstate.NewDeltaEngine(t, "n1", cfg, clock, map[string]int64{})
	if err != nil {
		log.Fatal(err)
	}
	n2, err := dstate.NewDeltaEngine(t, "n2", cfg, clock, map[string]int64{})
	if err != nil {
		log.Fatal(err)
	}
	deliver := func(to *dstate.DeltaEngine[map[string]int64, int64, int64, add], acts []dstate.Action) {
		for _, a := range acts {
			m, err := dstate.DecodeWire(dstate.EncodeWire(&a.Message))
			if err != nil {
				log.Fatal(err)
			}
			to.HandleWire(&m)
		}
	}
	deliver(n2, n1.OnNodeJoined("n2"))
	deliver(n1, n2.OnNodeJoined("n1"))

	res := n1.MutateWithDelta(func(s *map[string]int64) add {
		(*s)["apples"] += 5
		return add{"apples", 5}
	})
	fmt.Println(res.Actions[0])
	deliver(n2, res.Actions)
	view, _ := n2.Views().Get("n1")
	fmt.Println("n2 sees n1's total:", view.Value)
	// Output:
	// 1 1 2 1
	// broadcast(DeltaUpdate(tally from n1 v1000000:1 wire=2 1B))
	// n2 sees n1's total: 5
}
