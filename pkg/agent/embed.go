package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/raftpersist"
)

// Helpers for applications and tests that embed agents: a configuration
// on free loopback ports, the addresses an agent bound, a wait until it
// serves reads and writes, and an application's own actor runtime.

// LocalConfig returns a configuration for tests and examples: a
// single-node Raft server (BootstrapExpect 1) whose listeners (gossip,
// transport, Raft, admin API) bind free loopback ports (port 0, see
// [Agent.Addrs] for the ports they got), with the short timers of Fast and
// log level error. Its NodeID is dir's last element; DataDir is dir.
//
// Several agents started from it in one process do not collide. A node
// that joins another sets Join to that node's gossip address and
// BootstrapExpect to 0, so that it is added to the first node's Raft
// group instead of bootstrapping one of its own:
//
//	cfg := agent.LocalConfig(dir2)
//	cfg.Join, cfg.BootstrapExpect = []string{first.Addrs().Serf}, 0
func LocalConfig(dir string) Config {
	c := DefaultConfig()
	c.NodeID, c.DataDir = filepath.Base(filepath.Clean(dir)), dir
	c.SerfAddr, c.TransportAddr, c.RaftAddr, c.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.BootstrapExpect = 1
	c.Fast = true
	c.LogLevel = "error"
	return c
}

// Addrs are the addresses an agent's listeners are bound to, with the
// ports the system chose for port 0 filled in.
type Addrs struct {
	// Serf is the gossip address other nodes join (Config.Join).
	Serf string
	// Transport is the state transport's address.
	Transport string
	// Raft is the Raft address; empty on an agent that is not a server.
	Raft string
	// HTTP is the admin API's address.
	HTTP string
}

// Addrs returns the addresses the agent's listeners are bound to (the
// advertised ones where Config sets an advertise address), so that a node
// started on port 0 can be joined: Config.Join = []string{a.Addrs().Serf}.
func (a *Agent) Addrs() Addrs {
	ad := Addrs{Serf: a.gossip.LocalNode().Addr, Transport: a.tr.Addr(), HTTP: a.HTTPAddr()}
	if a.raft != nil {
		ad.Raft = a.raft.store.Addr()
	}
	return ad
}

// readyPoll is how often WaitReady and a Raft state's registration look
// again.
const readyPoll = 20 * time.Millisecond

// WaitReady waits until the agent answers reads and writes: it has joined
// another member (when Config.Join names seeds), a Raft leader is known and
// durable-kv is registered (on a server), as [Agent.Ready] and GET
// /v1/health/ready report it. When ctx ends first it returns an error
// matching ctx.Err() that says why the agent is not ready yet.
func (a *Agent) WaitReady(ctx context.Context) error {
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		reasons := a.notReadyReasons()
		if len(reasons) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent %s: not ready: %s: %w", a.cfg.NodeID, strings.Join(reasons, "; "), ctx.Err())
		case <-a.stopped:
			return fmt.Errorf("agent %s: not ready: the agent stopped", a.cfg.NodeID)
		case <-t.C:
		}
	}
}

// notReadyReasons are Ready's reasons and, when seeds were given and no
// other member is alive yet, that the agent has not joined.
func (a *Agent) notReadyReasons() []string {
	reasons := a.Ready().Reasons
	if len(a.cfg.Join) > 0 {
		joined := false
		for _, m := range a.gossip.members() {
			if m.Name != a.cfg.NodeID && m.Status == "alive" {
				joined = true
				break
			}
		}
		if !joined {
			reasons = append(reasons, fmt.Sprintf("not joined yet: no other member is alive (seeds %s)", strings.Join(a.cfg.Join, ", ")))
		}
	}
	return reasons
}

// WithRuntime runs the agent's states on rt, an application's own actor
// runtime (the proto.actor adapter's, say), instead of a goroutine runtime
// the agent creates: the application's actors and the state engines then
// share one runtime, and the agent still brings membership, Raft and the
// admin API. The agent does not close rt: stop the agent first, then close
// the runtime. Actor names carry the node ID, so agents with different
// IDs may share one runtime.
func WithRuntime(rt dstate.ActorRuntime) Option { return func(o *options) { o.runtime = rt } }

// noLeaderError is a Raft state's registration that ended before a Raft
// leader was known. It matches raftpersist.ErrNoLeader and the context's
// error.
type noLeaderError struct {
	state  string
	reason string // what Raft says
	cause  error  // ctx.Err() or the last attempt's error
}

func (e *noLeaderError) Error() string {
	return fmt.Sprintf("agent: register %q: no Raft leader yet (%s): %v", e.state, e.reason, e.cause)
}

func (e *noLeaderError) Unwrap() []error { return []error{raftpersist.ErrNoLeader, e.cause} }

// whenRaftLeader runs register, which registers the state named name with
// durability d, once a Raft leader is known when d is Raft and the agent
// is a server: until then, and while an attempt fails for want of a
// leader, it waits and tries again until ctx ends (see [Register]).
func whenRaftLeader[T any](ctx context.Context, a *Agent, name string, d dstate.Durability, register func() (T, error)) (T, error) {
	if d != dstate.Raft || a.raft == nil {
		return register()
	}
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		if id, _ := a.raft.store.Leader(); id != "" {
			v, err := register()
			if err == nil || !errors.Is(err, raftpersist.ErrNoLeader) || ctx.Err() != nil {
				return v, err
			}
		}
		select {
		case <-ctx.Done():
			var zero T
			rf := a.raft.store.Raft()
			reason := fmt.Sprintf("this server is %s in term %d", strings.ToLower(rf.State().String()), rf.CurrentTerm())
			return zero, &noLeaderError{state: name, reason: reason, cause: ctx.Err()}
		case <-t.C:
		}
	}
}
