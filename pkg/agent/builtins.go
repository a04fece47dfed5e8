package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// kvShard is the shard of a kv state.
type kvShard = node.DeltaShard[KV, KV, KVChange, KVChange]

// builtins are the states every agent registers: kv (Local), load
// (Memory), durable-kv (Raft, on servers) and, with TestHooks.LoadRate,
// test-load; with the background loops that keep load sampled, register
// durable-kv once Raft can load it (durable.go) and drive the test load
// (testload.go).
type builtins struct {
	cfg     Config
	hooks   TestHooks
	log     *slog.Logger
	node    *node.Node
	states  *stateRegistry
	started time.Time
	// leaderKnown reports whether Raft knows a leader; nil on an agent
	// that is not a server (no durable-kv).
	leaderKnown func() bool
	// stop is closed when the agent stops; bg counts the goroutines the
	// agent waits for.
	stop <-chan struct{}
	bg   *sync.WaitGroup

	kv   *kvShard
	load *node.Shard[Load, Load]

	mu        sync.Mutex
	durableKV *kvShard // nil until registered
	// durableErr is why durable-kv is not registered yet (durable.go).
	durableErr error
	testLoad   *kvShard // nil without a test load
	loadStats  loadStats
}

// stateConfig is a built-in state's configuration with durability d.
func (b *builtins) stateConfig(d dstate.Durability) dstate.StateConfig {
	c := dstate.DefaultStateConfig()
	c.Durability = d
	// Digests (node.Config.DigestInterval) repair lost updates; a blind
	// full broadcast only when configured.
	c.SyncStrategy.PeriodicFullSync = time.Duration(b.cfg.FullSyncInterval)
	if b.cfg.Fast {
		c.PullTimeout = time.Second
	}
	return c
}

// register registers kv (Local), load (Memory) and, with Raft,
// durable-kv, and starts their background loops.
func (b *builtins) register(ctx context.Context) error {
	var err error
	if b.kv, err = registerDelta(ctx, b.node, b.states, KVDef{StateName: KVState, Wire: b.hooks.KVWireVersion}, node.StateOptions[KV]{Config: b.stateConfig(dstate.Local), Initial: KV{}}); err != nil {
		return fmt.Errorf("agent: register %s: %w", KVState, err)
	}
	if b.leaderKnown != nil {
		// Registering loads the state through Raft, which needs a leader:
		// on a cluster still forming that waits for the other servers, so
		// it happens in the background and durable-kv answers "not ready"
		// until then.
		b.bg.Add(1)
		go func() {
			defer b.bg.Done()
			b.registerDurableKV(b.stateConfig(dstate.Raft))
		}()
	}
	if b.hooks.LoadRate > 0 {
		if err := b.startTestLoad(ctx, b.stateConfig(dstate.Memory)); err != nil {
			return err
		}
	}
	lcfg := b.stateConfig(dstate.Memory)
	lcfg.SyncStrategy = dstate.PeriodicOnlyStrategy(time.Duration(b.cfg.LoadInterval))
	if b.cfg.LoadInterval <= 0 {
		lcfg.SyncStrategy = dstate.PeriodicOnlyStrategy(time.Second)
	}
	if b.load, err = register(ctx, b.node, b.states, LoadDef{}, node.StateOptions[Load]{Config: lcfg, Initial: sampleLoad(b.started, time.Now())}); err != nil {
		return fmt.Errorf("agent: register %s: %w", LoadState, err)
	}
	interval := lcfg.SyncStrategy.PeriodicFullSync
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		b.sampleLoadEvery(interval)
	}()
	return nil
}

// sampleLoadEvery refreshes the load state every interval until the agent
// stops.
func (b *builtins) sampleLoadEvery(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			l := sampleLoad(b.started, now)
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			_, _, _ = b.load.MutateWith(ctx, dstate.Suppress, func(s *Load) { *s = l })
			cancel()
		}
	}
}

// shard returns the shard of a kv state by name.
func (b *builtins) shard(state string) (*kvShard, error) {
	switch state {
	case KVState:
		return b.kv, nil
	case TestLoadState:
		b.mu.Lock()
		s := b.testLoad
		b.mu.Unlock()
		if s == nil {
			return nil, fmt.Errorf("%w: state %q runs only on agents started with a test load", errNotEnabled, state)
		}
		return s, nil
	case DurableKVState:
		if b.leaderKnown == nil {
			return nil, fmt.Errorf("%w: state %q needs Raft; this agent is not a server", errNotEnabled, state)
		}
		b.mu.Lock()
		s := b.durableKV
		b.mu.Unlock()
		if s == nil {
			return nil, b.durableNotReady()
		}
		return s, nil
	}
	return nil, badRequest{fmt.Errorf("state %q is not a kv state (kv or durable-kv)", state)}
}

// durableLoaded reports whether durable-kv is registered.
func (b *builtins) durableLoaded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.durableKV != nil
}

// get returns key as nodeID holds it in a kv state.
func (b *builtins) get(state, nodeID, key string) (KVValue, error) {
	s, err := b.shard(state)
	if err != nil {
		return KVValue{}, err
	}
	v, ok := s.Views().Get(dstate.NodeID(nodeID))
	if !ok {
		return KVValue{}, fmt.Errorf("%w: this agent holds no view of node %q in %s", errNotFound, nodeID, state)
	}
	val, found := v.Value.Get(key)
	return KVValue{State: state, Node: nodeID, Key: key, Value: val, Found: found, Generation: v.Generation.String()}, nil
}

// write applies a write to this node's own map in a kv state.
func (b *builtins) write(ctx context.Context, state string, c KVChange) (WriteResult, error) {
	if c.Key == "" {
		return WriteResult{}, badRequest{errors.New("the key is empty")}
	}
	// The kv states are JSON on the wire and on disk, where invalid UTF-8
	// would silently become U+FFFD: peers and the next start would hold
	// another key or value than this node.
	if !utf8.ValidString(c.Key) || !utf8.ValidString(c.Value) {
		return WriteResult{}, badRequest{errors.New("the key and the value must be valid UTF-8")}
	}
	s, err := b.shard(state)
	if err != nil {
		return WriteResult{}, err
	}
	if c.Delete {
		// Deleting a key this node does not hold changes nothing: no new
		// generation, no Raft entry for durable-kv.
		if own, ok := s.Views().Get(dstate.NodeID(b.cfg.NodeID)); ok {
			if _, found := own.Value.Get(c.Key); !found {
				return WriteResult{State: state, Node: b.cfg.NodeID, Key: c.Key, Generation: own.Generation.String(), Unchanged: true}, nil
			}
		}
	}
	gen, _, err := s.MutateDelta(ctx, func(m *KV) KVChange {
		*m = m.Apply(c)
		return c
	})
	if err != nil {
		return WriteResult{}, err
	}
	return WriteResult{State: state, Node: b.cfg.NodeID, Key: c.Key, Generation: gen.String()}, nil
}
