package dstate_test

import (
	"strconv"
	"testing"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// viewsEngine returns an engine of n1 that saw peers join and holds the
// snapshot each sent.
func viewsEngine(b *testing.B, peers int) *dstate.Engine[Load, Load] {
	b.Helper()
	e, err := dstate.NewDeltaEngine(loadState{}, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, Load{})
	if err != nil {
		b.Fatal(err)
	}
	for i := range peers {
		e.OnNodeJoined(peerID(i))
	}
	data, _ := loadState{}.EncodeView(Load{CPU: 1})
	for i := range peers {
		e.HandleWire(&dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "load", Source: peerID(i), Generation: dstate.Generation{Incarnation: benchInc}, WireVersion: 1, Data: data})
	}
	return e.Engine
}

// BenchmarkViewsGet measures a reader's Views().Get of a peer's view: the
// handle (one atomic load) and the lookup.
func BenchmarkViewsGet(b *testing.B) {
	for _, peers := range []int{2, 100, 1000} {
		b.Run("peers-"+strconv.Itoa(peers), func(b *testing.B) {
			e := viewsEngine(b, peers)
			ids := make([]dstate.NodeID, peers)
			for i := range ids {
				ids[i] = peerID(i)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := e.Views().Get(ids[i]); !ok {
					b.Fatal("no view")
				}
				if i++; i == len(ids) {
					i = 0
				}
			}
		})
	}
}

// BenchmarkViewsJoinLeave measures adding a peer to an engine that holds
// the views of peers others and removing it again (OnNodeJoined of a new
// node, then ForgetDeparted): the cost of membership changes as the
// cluster grows.
func BenchmarkViewsJoinLeave(b *testing.B) {
	for _, peers := range []int{10, 100, 1000} {
		b.Run("peers-"+strconv.Itoa(peers), func(b *testing.B) {
			e := viewsEngine(b, peers)
			b.ReportAllocs()
			for b.Loop() {
				e.OnNodeJoined("newcomer")
				e.OnNodeLeft("newcomer")
				e.ForgetDeparted("newcomer")
			}
		})
	}
}

// BenchmarkViewsAll measures a reader's pass over every view with
// Views().All (range over func).
func BenchmarkViewsAll(b *testing.B) {
	for _, peers := range []int{10, 100} {
		b.Run("peers-"+strconv.Itoa(peers), func(b *testing.B) {
			e := viewsEngine(b, peers)
			b.ReportAllocs()
			for b.Loop() {
				var sum int64
				for _, v := range e.Views().All {
					sum += v.Value.CPU
				}
				if sum != int64(peers) {
					b.Fatalf("sum %d, want %d", sum, peers)
				}
			}
		})
	}
}
