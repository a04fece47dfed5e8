package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
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
	a     *Agent
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
		now := h.a.clock.Now()
		for _, id := range vs.Nodes() {
			if opts.Node != "" && string(id) != opts.Node {
				continue
			}
			v, _ := vs.Get(id)
			e := ViewEntry{
				Node: string(id), Generation: v.Generation.String(), Incarnation: v.Generation.Incarnation, Age: v.Generation.Age,
				SyncedAgoMs: now.Sub(v.SyncedAt).Milliseconds(), ModifiedMs: v.ModifiedUnixMs, Value: v.Value,
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
func Register[S any](ctx context.Context, a *Agent, def dstate.DistributedState[S], opts node.StateOptions[S]) (*node.Shard[S, S], error) {
	s, err := node.Register(ctx, a.node, def, opts)
	if err != nil {
		return nil, err
	}
	a.addState(s.StateName(), &shardHandle[S, S]{a: a, shard: s, kind: "simple", wire: def.WireVersion()})
	return s, nil
}

// RegisterDelta registers a delta state on a started agent; see [Register].
func RegisterDelta[S, V, D, C any](ctx context.Context, a *Agent, def dstate.DeltaDistributedState[S, V, D, C], opts node.StateOptions[S]) (*node.DeltaShard[S, V, D, C], error) {
	s, err := node.RegisterDelta(ctx, a.node, def, opts)
	if err != nil {
		return nil, err
	}
	a.addState(s.StateName(), &shardHandle[S, V]{a: a, shard: s.Shard, kind: "delta", wire: def.WireVersion()})
	return s, nil
}

func (a *Agent) addState(name string, h stateHandle) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.states[name] = h
}

func (a *Agent) state(name string) (stateHandle, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.states[name]
	if h == nil {
		return nil, &dstate.RegistryError{Kind: dstate.ErrStateNotRegistered, Name: name}
	}
	return h, nil
}

// States describes every registered state, sorted by name.
func (a *Agent) States() []StateInfo {
	a.mu.Lock()
	hs := make([]stateHandle, 0, len(a.states))
	for _, h := range a.states {
		hs = append(hs, h)
	}
	a.mu.Unlock()
	out := make([]StateInfo, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.info())
	}
	slices.SortFunc(out, func(x, y StateInfo) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// Dump returns the views of one state held by this agent.
func (a *Agent) Dump(ctx context.Context, state string, opts DumpOptions) (StateDump, error) {
	h, err := a.state(state)
	if err != nil {
		return StateDump{}, err
	}
	return h.dump(ctx, opts)
}
