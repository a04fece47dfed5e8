package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// ScaleConfig configures [Scale].
type ScaleConfig struct {
	// Nodes and States per node of the simulated cluster.
	Nodes  int
	States int
}

// DefaultScaleConfig is 100 nodes × 10 states.
func DefaultScaleConfig() ScaleConfig { return ScaleConfig{Nodes: 100, States: 10} }

// Validate names the first invalid field.
func (c ScaleConfig) Validate() error {
	switch {
	case c.Nodes < 2:
		return fmt.Errorf("bench: scale: Nodes %d, want ≥ 2", c.Nodes)
	case c.States < 1:
		return fmt.Errorf("bench: scale: States %d, want ≥ 1", c.States)
	}
	return nil
}

type countEngine = dstate.Engine[int64, int64]

// memNet is an in-memory network of engines driven from one goroutine:
// every message is encoded with the wire codec, queued in FIFO order and
// decoded on delivery, so the codec's cost is included.
type memNet struct {
	ids     []dstate.NodeID
	engines map[dstate.NodeID][]*countEngine
	hosts   map[dstate.NodeID]*memHost
	stateOf map[string]int
	queue   []flight
	msgs    int
	bytes   int
}

type flight struct {
	to    dstate.NodeID
	frame []byte
}

// perform carries out the actions an engine of node from returned.
func (n *memNet) perform(from dstate.NodeID, acts []dstate.Action) {
	dstate.Dispatch(acts, n.hosts[from])
}

// memHost is one node of a memNet as the dstate.ActionHandler of its
// engines. The scale run measures how snapshots and deltas spread, so it
// has no delayed broadcasts and no change feed: those actions are ignored.
type memHost struct {
	net *memNet
	id  dstate.NodeID
}

func (h *memHost) Broadcast(frame []byte) {
	for _, id := range h.net.ids {
		if id != h.id {
			h.net.queue = append(h.net.queue, flight{to: id, frame: frame})
		}
	}
}

func (h *memHost) Send(to dstate.NodeID, frame []byte) {
	h.net.queue = append(h.net.queue, flight{to: to, frame: frame})
}

func (h *memHost) BroadcastAfter(time.Duration, []byte)                    {}
func (h *memHost) Notify(dstate.ChangeNotification)                        {}
func (h *memHost) NoticeRejected(dstate.NodeID, dstate.ChangeNotification) {}

// drain delivers messages until none is left.
func (n *memNet) drain() error {
	for len(n.queue) > 0 {
		batch := n.queue
		n.queue = nil
		for _, f := range batch {
			n.msgs++
			n.bytes += len(f.frame)
			m, err := dstate.DecodeWire(f.frame)
			if err != nil {
				return fmt.Errorf("bench: scale: decode: %w", err)
			}
			idx, ok := n.stateOf[m.State]
			if !ok {
				continue
			}
			n.perform(f.to, n.engines[f.to][idx].HandleWire(&m))
		}
	}
	return nil
}

// addNode creates a node's engines (not yet joined to anyone).
func (n *memNet) addNode(id dstate.NodeID, states int) error {
	cfg := dstate.DefaultStateConfig()
	engs := make([]*countEngine, states)
	for s := range states {
		e, err := dstate.NewSimpleEngine[int64](countState{name: fmt.Sprintf("c%d", s)}, id, cfg, dstate.SystemClock{}, int64(s))
		if err != nil {
			return err
		}
		engs[s] = e
	}
	n.engines[id] = engs
	n.hosts[id] = &memHost{net: n, id: id}
	n.ids = append(n.ids, id)
	return nil
}

// joined tells a's engines that b joined.
func (n *memNet) joined(a, b dstate.NodeID) {
	for _, e := range n.engines[a] {
		n.perform(a, e.OnNodeJoined(b))
	}
}

// converged reports whether every engine holds every node's current
// generation.
func (n *memNet) converged() bool {
	for _, a := range n.ids {
		for s, e := range n.engines[a] {
			views := e.Views()
			if views.Len() != len(n.ids) {
				return false
			}
			for _, b := range n.ids {
				v, ok := views.Get(b)
				if !ok || v.Generation != n.engines[b][s].Generation() {
					return false
				}
			}
		}
	}
	return true
}

// Scale runs the scale scenario: Nodes × States engines in one process over
// an in-memory network; the cluster forms, its memory per view entry is
// measured, then one more node joins and the time until every view
// everywhere is current is measured.
func Scale(ctx context.Context, cfg ScaleConfig) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := newResult("scale", "simulated nodes × states as engines over an in-memory network in one process")
	res.param("nodes", "%d", cfg.Nodes)
	res.param("states", "%d", cfg.States)
	stateOf := make(map[string]int, cfg.States)
	for s := range cfg.States {
		stateOf[fmt.Sprintf("c%d", s)] = s
	}

	before := memStats()
	net := &memNet{engines: map[dstate.NodeID][]*countEngine{}, hosts: map[dstate.NodeID]*memHost{}, stateOf: stateOf}
	for i := range cfg.Nodes {
		if err := net.addNode(dstate.NodeID(fmt.Sprintf("node-%03d", i)), cfg.States); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	for _, a := range net.ids {
		for _, b := range net.ids {
			if a != b {
				net.joined(a, b)
			}
		}
	}
	if err := net.drain(); err != nil {
		return nil, err
	}
	formation := time.Since(t0)
	formMsgs := net.msgs
	if !net.converged() {
		return nil, fmt.Errorf("bench: scale: the cluster did not converge after forming")
	}
	net.queue = nil
	after := memStats()
	entries := cfg.Nodes * cfg.Nodes * cfg.States
	perEntry := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(entries)
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// One more node joins.
	newID := dstate.NodeID(fmt.Sprintf("node-%03d", cfg.Nodes))
	if err := net.addNode(newID, cfg.States); err != nil {
		return nil, err
	}
	net.msgs, net.bytes = 0, 0
	t1 := time.Now()
	for _, a := range net.ids[:cfg.Nodes] {
		net.joined(a, newID)
		net.joined(newID, a)
	}
	if err := net.drain(); err != nil {
		return nil, err
	}
	joinTime := time.Since(t1)
	if !net.converged() {
		return nil, fmt.Errorf("bench: scale: the cluster did not converge after the join")
	}

	res.metric("view entries (nodes² × states)", float64(entries), "entries")
	res.metric("formation: messages", float64(formMsgs), "msgs")
	res.metric("formation: time to converge", ms(formation), "ms")
	res.metric("join: messages", float64(net.msgs), "msgs")
	res.metric("join: bytes", float64(net.bytes), "B")
	res.metric("join: time to converge", ms(joinTime), "ms")
	res.metric("heap per view entry (engines included)", perEntry, "B")
	res.atMost("overhead per view entry (minus the 8-byte value)", perEntry-8, "B", 128)
	res.note("one goroutine delivers every message in FIFO order with no network delay, so the times are the CPU cost " +
		"of convergence (encode, decode, HandleWire) rather than a network's")
	res.note("memory is the live heap (after two forced GCs) of the engines of the formed cluster divided by its " +
		"view entries; it includes each engine's fixed cost and its per-peer status")
	res.Elapsed = Duration(time.Since(start))
	return res, nil
}
