package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// stateHandle is what the admin API needs of a registered state, whatever
// its types.
type stateHandle interface {
	info() StateInfo
	dump(ctx context.Context, opts DumpOptions) (StateDump, error)
	watch(ctx context.Context, opts WatchOptions) iter.Seq2[StateChange, error]
}

// DumpOptions select what Agent.Dump returns.
type DumpOptions struct {
	// Node, when set, limits the dump to that node's view.
	Node string
	// MaxStaleness, when positive, refreshes views older than it (or with
	// a newer generation announced) before answering.
	MaxStaleness time.Duration
	// Consistent reads every node's last committed envelope through Raft
	// (Raft-durable states only).
	Consistent bool
}

type shardHandle[S, V any] struct {
	clock dstate.Clock
	shard *node.Shard[S, V]
	kind  string
	wire  uint32
}

func (h *shardHandle[S, V]) info() StateInfo {
	cfg := h.shard.Config()
	return StateInfo{
		Name: h.shard.StateName(), Kind: h.kind, WireVersion: h.wire, Durability: cfg.Durability.String(),
		Strategy: strategyName(cfg.SyncStrategy), Views: h.shard.Views().Len(), Generation: h.shard.Generation().String(),
	}
}

func strategyName(s dstate.SyncStrategy) string {
	switch {
	case s.PushMode == dstate.ActivePush && s.PeriodicFullSync > 0:
		return fmt.Sprintf("active-push+periodic(%s)", s.PeriodicFullSync)
	case s.PushMode == dstate.ActivePush:
		return "active-push"
	case s.PushMode == dstate.ActiveFeedLazyPull && s.PeriodicFullSync > 0:
		return fmt.Sprintf("feed-lazy-pull+periodic(%s)", s.PeriodicFullSync)
	case s.PushMode == dstate.ActiveFeedLazyPull:
		return "feed-lazy-pull"
	case s.PeriodicFullSync > 0:
		return fmt.Sprintf("periodic(%s)", s.PeriodicFullSync)
	}
	return "none"
}

func (h *shardHandle[S, V]) dump(ctx context.Context, opts DumpOptions) (StateDump, error) {
	name := h.shard.StateName()
	if opts.Consistent {
		return h.consistentDump(ctx, opts)
	}
	d := StateDump{State: name, Consistency: "local", Views: []ViewEntry{}}
	collect := func(vs dstate.Views[V]) {
		now := h.clock.Now()
		for _, id := range vs.Nodes() {
			if opts.Node != "" && string(id) != opts.Node {
				continue
			}
			v, _ := vs.Get(id)
			e := ViewEntry{
				Node: string(id), Generation: v.Generation.String(), Incarnation: v.Generation.Incarnation, Age: v.Generation.Age,
				SyncedAgoMs: now.Sub(vs.SyncedAt(v)).Milliseconds(), ModifiedMs: v.ModifiedUnixMs, Value: v.Value,
			}
			if v.HasPending() {
				e.Pending = v.Pending.String()
			}
			d.Views = append(d.Views, e)
		}
	}
	if opts.MaxStaleness <= 0 {
		h.shard.QueryLocal(collect)
		return d, nil
	}
	d.Consistency = "refreshed"
	err := h.shard.Query(ctx, opts.MaxStaleness, collect)
	var qe *dstate.QueryError
	if errors.As(err, &qe) && errors.Is(err, dstate.ErrStalePeer) {
		for _, p := range qe.Peers {
			d.StalePeers = append(d.StalePeers, string(p.Node))
		}
		return d, nil
	}
	return d, err
}

func (h *shardHandle[S, V]) consistentDump(ctx context.Context, opts DumpOptions) (StateDump, error) {
	name := h.shard.StateName()
	d := StateDump{State: name, Consistency: "linearizable", Views: []ViewEntry{}}
	err := h.shard.QueryDurable(ctx, func(objs map[dstate.NodeID]*dstate.StateObject[S]) {
		ids := make([]dstate.NodeID, 0, len(objs))
		for id := range objs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if opts.Node != "" && string(id) != opts.Node {
				continue
			}
			o := objs[id]
			d.Views = append(d.Views, ViewEntry{
				Node: string(id), Generation: o.Generation.String(), Incarnation: o.Generation.Incarnation, Age: o.Generation.Age,
				ModifiedMs: o.ModifiedUnixMs, Value: o.Value,
			})
		}
	})
	if errors.Is(err, node.ErrNotDurable) {
		return StateDump{}, badRequest{fmt.Errorf("state %q is %s-durable: a consistent read needs a Raft-durable state (try durable-kv)", name, h.shard.Config().Durability)}
	}
	return d, err
}

// Register registers a simple state on a started agent: the node starts
// replicating it and the admin API lists and dumps it. Its durability
// (opts.Config.Durability) must be one the agent provides: Memory, Local
// (always) or Raft (on servers and clients of a Raft cluster).
//
// A Raft-durable state is loaded through Raft, which needs a leader. On a
// server, Register waits for one: until a leader is known, and while an
// attempt fails because the leader was lost, it waits and tries again,
// until ctx ends; it then fails with an error that says "no Raft leader
// yet" and matches raftpersist.ErrNoLeader and ctx.Err(). Give ctx a
// deadline to bound the wait, or call [Agent.WaitReady] first.
func Register[S any](ctx context.Context, a *Agent, def dstate.DistributedState[S], opts node.StateOptions[S]) (*node.Shard[S, S], error) {
	return whenRaftLeader(ctx, a, def.Name(), opts.Config.Durability, func() (*node.Shard[S, S], error) {
		return register(ctx, a.node, a.states, def, opts)
	})
}

// RegisterDelta registers a delta state on a started agent; like
// [Register], it waits for a Raft leader to register a Raft-durable state.
func RegisterDelta[S, V, D, C any](ctx context.Context, a *Agent, def dstate.DeltaDistributedState[S, V, D, C], opts node.StateOptions[S]) (*node.DeltaShard[S, V, D, C], error) {
	return whenRaftLeader(ctx, a, def.Name(), opts.Config.Durability, func() (*node.DeltaShard[S, V, D, C], error) {
		return registerDelta(ctx, a.node, a.states, def, opts)
	})
}

func register[S any](ctx context.Context, n *node.Node, reg *stateRegistry, def dstate.DistributedState[S], opts node.StateOptions[S]) (*node.Shard[S, S], error) {
	s, err := node.Register(ctx, n, def, opts)
	if err != nil {
		return nil, err
	}
	reg.add(s.StateName(), &shardHandle[S, S]{clock: reg.clock, shard: s, kind: "simple", wire: def.WireVersion()})
	return s, nil
}

func registerDelta[S, V, D, C any](ctx context.Context, n *node.Node, reg *stateRegistry, def dstate.DeltaDistributedState[S, V, D, C], opts node.StateOptions[S]) (*node.DeltaShard[S, V, D, C], error) {
	s, err := node.RegisterDelta(ctx, n, def, opts)
	if err != nil {
		return nil, err
	}
	reg.add(s.StateName(), &shardHandle[S, V]{clock: reg.clock, shard: s.Shard, kind: "delta", wire: def.WireVersion()})
	return s, nil
}

// stateRegistry is the states registered through the agent, which the
// admin API lists, dumps and reports on.
type stateRegistry struct {
	clock dstate.Clock
	mu    sync.Mutex
	m     map[string]stateHandle
}

func newStateRegistry(clock dstate.Clock) *stateRegistry {
	return &stateRegistry{clock: clock, m: map[string]stateHandle{}}
}

func (r *stateRegistry) add(name string, h stateHandle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[name] = h
}

func (r *stateRegistry) get(name string) (stateHandle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.m[name]
	if h == nil {
		return nil, &dstate.RegistryError{Kind: dstate.ErrStateNotRegistered, Name: name}
	}
	return h, nil
}

// has reports whether every name is registered.
func (r *stateRegistry) has(names ...string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		if r.m[n] == nil {
			return false
		}
	}
	return true
}

// snapshot returns the registered states by name.
func (r *stateRegistry) snapshot() map[string]stateHandle {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.m)
}

// list describes every registered state, sorted by name.
func (r *stateRegistry) list() []StateInfo {
	hs := r.snapshot()
	out := make([]StateInfo, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.info())
	}
	slices.SortFunc(out, func(x, y StateInfo) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// States describes every registered state, sorted by name.
func (a *Agent) States() []StateInfo { return a.states.list() }

// Dump returns the views of one state held by this agent.
func (a *Agent) Dump(ctx context.Context, state string, opts DumpOptions) (StateDump, error) {
	h, err := a.states.get(state)
	if err != nil {
		return StateDump{}, err
	}
	return h.dump(ctx, opts)
}
