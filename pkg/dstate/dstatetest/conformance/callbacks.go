package conformance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/node"
)

// testCallbacks runs a pkg/node host on the runtime under test (two nodes
// over an in-memory transport) and makes the state's callbacks panic: the
// caller of a mutation is answered with the typed error, the state, its
// generation and what was saved stay as they were, nothing is published,
// and the next mutation is the next age; a panic while reading a peer's
// message leaves the last good view and asks for a snapshot.
func testCallbacks(t *testing.T, newRuntime func(*testing.T) RuntimeUnderTest) {
	var nilMap map[string]int64
	var empty []int
	idx := 1
	mutations := []struct {
		name     string
		callback string // switched to panic on the sender, if any
		simple   bool   // a simple Mutate, which publishes a snapshot
		fn       func(*dstatetest.Gauges) dstatetest.GaugeChange
	}{
		{name: "MapWriteThenPanic", fn: func(g *dstatetest.Gauges) dstatetest.GaugeChange { g.Values["partial"] = 1; g.Total++; panic("boom") }},
		{name: "NilMapWrite", fn: func(g *dstatetest.Gauges) dstatetest.GaugeChange {
			g.Values["partial"] = 1
			nilMap["x"] = 1
			return dstatetest.GaugeChange{}
		}},
		{name: "IndexOutOfRange", fn: func(g *dstatetest.Gauges) dstatetest.GaugeChange {
			g.Values["partial"] = 1
			_ = empty[idx]
			return dstatetest.GaugeChange{}
		}},
		{name: "ProjectView", callback: dstate.CallbackProjectView, fn: dstatetest.Set("partial", 1)},
		{name: "ProjectDelta", callback: dstate.CallbackProjectDelta, fn: dstatetest.Set("partial", 1)},
		{name: "SyncUrgency", callback: dstate.CallbackSyncUrgency, fn: dstatetest.Set("partial", 1)},
		{name: "EncodeDelta", callback: dstate.CallbackEncodeDelta, fn: dstatetest.Set("partial", 1)},
		{name: "EncodeView", callback: dstate.CallbackEncodeView, simple: true, fn: dstatetest.Set("partial", 1)},
		{name: "EncodeState", callback: dstate.CallbackEncodeState, fn: dstatetest.Set("partial", 1)},
	}
	for _, tc := range mutations {
		t.Run("Mutation/"+tc.name, func(t *testing.T) {
			p := newCallbackPair(t, start(t, newRuntime))
			a, b := p.shards["a"], p.shards["b"]
			gen := a.Generation()
			saves, frames := p.store.saveCount(), p.net.sent("a")
			sent, received := a.Metrics(), b.Metrics()

			if tc.callback != "" {
				p.switches["a"].Set(tc.callback)
			}
			var err error
			if tc.simple {
				_, _, err = a.Mutate(p.ctx, func(g *dstatetest.Gauges) { tc.fn(g) })
			} else {
				_, _, err = a.MutateDelta(p.ctx, tc.fn)
			}
			p.switches["a"].Clear()
			require.ErrorIs(t, err, dstate.ErrCallbackPanic, "the caller's error")
			var pe *dstate.CallbackPanicError
			require.ErrorAs(t, err, &pe)
			want := tc.callback
			if want == "" {
				want = dstate.CallbackMutation
			}
			require.Equal(t, want, pe.Callback, "the callback named")
			require.NotEmpty(t, pe.Stack)
			if tc.name == "NilMapWrite" || tc.name == "IndexOutOfRange" {
				var re runtime.Error
				require.ErrorAs(t, err, &re, "the runtime error the mutation panicked with")
			}
			require.Equal(t, gen, a.Generation(), "the generation after the panic")
			require.Equal(t, saves, p.store.saveCount(), "saves after the panic")
			require.Equal(t, frames, p.net.sent("a"), "frames sent after the panic")
			require.Equal(t, sent.TotalMutations, a.Metrics().TotalMutations)

			// The next mutation is the next age, and carries no trace of
			// the one that panicked, to the store and to the peer.
			next, view, err := a.MutateDelta(p.ctx, dstatetest.Set("next", 2))
			require.NoError(t, err, "the mutation after the panic")
			require.Equal(t, gen.Age+1, next.Age, "the age of the mutation after the panic")
			require.Equal(t, dstatetest.GaugesView{"a": 1, "next": 2}, view)
			wantState, err := dstatetest.GaugesState{}.EncodeState(dstatetest.Gauges{Values: map[string]int64{"a": 1, "next": 2}, Total: 3})
			require.NoError(t, err)
			require.Equal(t, wantState, p.store.last(), "the saved state (with its private total)")
			require.Equal(t, saves+1, p.store.saveCount())
			require.Eventually(t, func() bool {
				v, ok := b.Views().Get("a")
				return ok && v.Generation == next
			}, waitFor, pollEvery, "the peer receives the mutation after the panic")
			v, _ := b.Views().Get("a")
			require.Equal(t, dstatetest.GaugesView{"a": 1, "next": 2}, v.Value, "the peer's view")
			require.Equal(t, received.DeltasReceived+1, b.Metrics().DeltasReceived, "deltas the peer applied")
			require.Equal(t, received.SyncFailures, b.Metrics().SyncFailures, "the peer's sync failures")
		})
	}

	t.Run("Peer/ApplyDelta", func(t *testing.T) {
		p := newCallbackPair(t, start(t, newRuntime))
		a, b := p.shards["a"], p.shards["b"]
		before := b.Metrics()
		p.switches["b"].Set(dstate.CallbackApplyDelta)
		next, _, err := a.MutateDelta(p.ctx, dstatetest.Set("a", 5))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return b.Metrics().SyncFailures == before.SyncFailures+1 },
			waitFor, pollEvery, "the panicking delta counts as a sync failure")
		p.switches["b"].Clear()
		// The snapshot it asked for repairs the view.
		require.Eventually(t, func() bool {
			v, ok := b.Views().Get("a")
			return ok && v.Generation == next
		}, waitFor, pollEvery, "the requested snapshot repairs the view")
		v, _ := b.Views().Get("a")
		require.Equal(t, dstatetest.GaugesView{"a": 5}, v.Value)
		require.Equal(t, before.SnapshotRequestsSent+1, b.Metrics().SnapshotRequestsSent)
		require.Equal(t, before.DeltasReceived, b.Metrics().DeltasReceived)
	})

	t.Run("Peer/DecodeView", func(t *testing.T) {
		p := newCallbackPair(t, start(t, newRuntime))
		a, b := p.shards["a"], p.shards["b"]
		before := b.Metrics()
		held, _ := b.Views().Get("a")
		p.switches["b"].Set(dstate.CallbackDecodeView)
		_, _, err := a.Mutate(p.ctx, func(g *dstatetest.Gauges) { dstatetest.Set("a", 6)(g) }) // a snapshot
		require.NoError(t, err)
		// The broadcast snapshot and the answer to the request it caused
		// both fail to decode.
		require.Eventually(t, func() bool { return b.Metrics().SyncFailures == before.SyncFailures+2 },
			waitFor, pollEvery, "the panicking snapshot and the answer to the request count as sync failures")
		require.Equal(t, before.SnapshotRequestsSent+1, b.Metrics().SnapshotRequestsSent, "snapshot requests")
		v, _ := b.Views().Get("a")
		require.Equal(t, held.Generation, v.Generation, "the last good view")
		require.Equal(t, held.Value, v.Value)
		p.switches["b"].Clear()
	})
}

// callbackPair is two nodes, a and b, on one runtime, with a PanickyGauges
// state each; a saves to store.
type callbackPair struct {
	ctx      context.Context
	net      *memNet
	store    *countingStore
	shards   map[dstate.NodeID]*node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]
	switches map[dstate.NodeID]*dstatetest.PanicSwitch
}

func newCallbackPair(t *testing.T, rut RuntimeUnderTest) *callbackPair {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	p := &callbackPair{ctx: ctx, net: &memNet{nodes: map[dstate.NodeID]func(dstate.NodeID, []byte){}}, store: &countingStore{},
		shards: map[dstate.NodeID]*node.DeltaShard[dstatetest.Gauges, dstatetest.GaugesView, dstatetest.GaugeDelta, dstatetest.GaugeChange]{}, switches: map[dstate.NodeID]*dstatetest.PanicSwitch{}}
	events := dstatetest.NewTestClusterEvents()
	quiet := slog.New(slog.DiscardHandler)
	for _, id := range []dstate.NodeID{"a", "b"} {
		n, err := node.New(node.Config{ID: id, Runtime: rut.Runtime, Events: events, Transport: &memTransport{net: p.net, id: id}, Logger: quiet})
		require.NoError(t, err, "node %s", id)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			require.NoError(t, n.Close(ctx))
		})
		sw := &dstatetest.PanicSwitch{}
		opts := node.StateOptions[dstatetest.Gauges]{Config: dstate.DefaultStateConfig(), Initial: dstatetest.NewGauges()}
		if id == "a" {
			opts.Persistence = p.store
		}
		s, err := node.RegisterDelta(ctx, n, dstatetest.PanickyGauges{Switch: sw}, opts)
		require.NoError(t, err, "register on %s", id)
		p.shards[id], p.switches[id] = s, sw
	}
	for _, id := range []dstate.NodeID{"a", "b"} {
		events.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: id, Tags: map[string]string{node.TransportTag: string(id)}})
	}
	_, _, err := p.shards["a"].MutateDelta(ctx, dstatetest.Set("a", 1))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, ok := p.shards["b"].Views().Get("a")
		return ok && v.Generation == p.shards["a"].Generation()
	}, waitFor, pollEvery, "b holds a's first mutation")
	return p
}

// memNet delivers frames between memTransports synchronously, in order.
type memNet struct {
	mu    sync.Mutex
	nodes map[dstate.NodeID]func(dstate.NodeID, []byte)
	count sync.Map // NodeID → *atomic.Uint64 of frames sent
}

func (m *memNet) sent(id dstate.NodeID) uint64 {
	c, _ := m.count.LoadOrStore(id, new(atomic.Uint64))
	return c.(*atomic.Uint64).Load()
}

// memTransport is a node.Transport on a memNet.
type memTransport struct {
	net *memNet
	id  dstate.NodeID
}

var _ dstate.Transport = (*memTransport)(nil)

func (t *memTransport) Start(deliver func(dstate.NodeID, []byte)) error {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	t.net.nodes[t.id] = deliver
	return nil
}

func (t *memTransport) SetPeer(dstate.NodeID, string) {}
func (t *memTransport) RemovePeer(dstate.NodeID)      {}
func (t *memTransport) Addr() string                  { return string(t.id) }

func (t *memTransport) Send(to dstate.NodeID, frame []byte) error {
	t.net.mu.Lock()
	deliver := t.net.nodes[to]
	t.net.mu.Unlock()
	if deliver == nil {
		return fmt.Errorf("dstatetest: no node %q on the in-memory network", to)
	}
	c, _ := t.net.count.LoadOrStore(t.id, new(atomic.Uint64))
	c.(*atomic.Uint64).Add(1)
	deliver(t.id, frame)
	return nil
}

func (t *memTransport) Close(context.Context) error {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	delete(t.net.nodes, t.id)
	return nil
}

// countingStore is a Gauges persistence that keeps the encoding of the
// last saved value (so that later writes into its maps cannot change what
// was saved) and counts the saves.
type countingStore struct {
	mu    sync.Mutex
	saves int
	data  []byte
}

func (s *countingStore) Save(_ context.Context, obj *dstate.StateObject[dstatetest.Gauges], _ []byte) error {
	b, err := dstatetest.GaugesState{}.EncodeState(obj.Value)
	if err != nil {
		return errors.Join(dstate.ErrIO, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	s.data = b
	return nil
}

func (s *countingStore) Load(context.Context) (*dstate.StateObject[dstatetest.Gauges], error) {
	return nil, nil
}

func (s *countingStore) saveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

func (s *countingStore) last() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}
