package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/raftpersist"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// raftConsensus is the agent's Raft group: a raftpersist.Store kept in
// step with the gossip members: servers
// are observed for bootstrap-expect, the leader adds voters that join and
// removes servers that leave gracefully.
type raftConsensus struct {
	a     *Agent
	store *raftpersist.Store
	sub   dstate.SubscriptionID
	stop  chan struct{}
	done  chan struct{}
	// gossip is set by attach; until then only servers of the Raft
	// configuration may connect.
	gossip atomic.Pointer[serfGossip]
	// reach says which servers passed a Raft handshake probe; only those
	// count toward bootstrap-expect and are added as voters (reach.go).
	reach *serverReach
	// kick asks the reconcile loop for a pass now (a server member passed
	// its probe), so a restarted server is a voter again without waiting
	// for the next tick.
	kick chan struct{}
	// followerStats caches the followers' figures for the metrics
	// (metrics_gauges.go).
	followerStats followerStats
}

// openConsensus opens the Raft store; attach then follows the gossip
// members.
func openConsensus(a *Agent) (*raftConsensus, error) {
	cfg := a.cfg
	rcfg := raftpersist.DefaultConfig()
	rcfg.NodeID = nodeID(cfg)
	rcfg.DataDir = filepath.Join(cfg.DataDir, "raft")
	rcfg.BindAddr = cfg.RaftAddr
	rcfg.AdvertiseAddr = cfg.RaftAdvertise
	rcfg.BootstrapExpect = cfg.BootstrapExpect
	rcfg.Logger = a.log.With("component", "raft")
	rcfg.RaftLogLevel, _ = raftLogLevel(cfg) // checked by Validate
	rcfg.RaftLogLevelSet = true
	rcfg.HeartbeatTimeout = raftHeartbeatTimeout(cfg)
	if cfg.Fast {
		rcfg.ElectionTimeout, rcfg.LeaderLeaseTimeout = 200*time.Millisecond, 100*time.Millisecond
	}
	rcfg.IdleTimeout = time.Duration(cfg.RaftIdleTimeout)
	rcfg.MaxConns, rcfg.MaxConnsPerHost = cfg.RaftMaxConns, cfg.RaftMaxConnsPerHost
	rcfg.LogStore = cfg.RaftLogStore
	rcfg.WarnInterval = time.Duration(cfg.LimitLogInterval)
	rc := &raftConsensus{a: a, stop: make(chan struct{}), done: make(chan struct{}), reach: newServerReach(time.Duration(cfg.LimitLogInterval)), kick: make(chan struct{}, 1)}
	rcfg.IsKnownNode = rc.isKnownNode
	rcfg.ResolveServer = rc.resolveServer // servers restarted on new addresses (leave.go)
	if cfg.TLSCertFile != "" {
		t, err := loadTLS(cfg)
		if err != nil {
			return nil, err
		}
		rcfg.TLS = t
	}
	store, err := raftpersist.New(rcfg)
	if err != nil {
		return nil, fmt.Errorf("agent: raft on %s: %w", cfg.RaftAddr, err)
	}
	rc.store = store
	return rc, nil
}

// raftHeartbeatTimeout is the Raft heartbeat timeout the agent runs with.
func raftHeartbeatTimeout(cfg Config) time.Duration {
	if cfg.Fast {
		return 200 * time.Millisecond
	}
	return raftpersist.DefaultConfig().HeartbeatTimeout
}

// validateRaftLimits checks the Raft listener's idle timeout and
// connection caps, and the Raft log store, under their config names.
func validateRaftLimits(c Config) error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch hb := raftHeartbeatTimeout(c); {
	case c.RaftIdleTimeout < 0:
		return bad("raft_idle_timeout", "%s is negative", time.Duration(c.RaftIdleTimeout))
	case c.RaftIdleTimeout > 0 && time.Duration(c.RaftIdleTimeout) < 2*hb:
		return bad("raft_idle_timeout", "%s is less than twice the Raft heartbeat timeout %s", time.Duration(c.RaftIdleTimeout), hb)
	case c.RaftMaxConns < 0:
		return bad("raft_max_conns", "%d is negative", c.RaftMaxConns)
	case c.RaftMaxConnsPerHost < 0:
		return bad("raft_max_conns_per_host", "%d is negative", c.RaftMaxConnsPerHost)
	case c.RaftLogStore != "" && c.RaftLogStore != raftpersist.LogStoreBoltDB && c.RaftLogStore != raftpersist.LogStoreWAL:
		return bad("raft_log_store", "%q is not %q or %q", c.RaftLogStore, raftpersist.LogStoreBoltDB, raftpersist.LogStoreWAL)
	}
	return nil
}

// isKnownNode admits Raft connections from gossip members that have not
// left (servers of the Raft configuration are admitted by the store).
func (rc *raftConsensus) isKnownNode(id dstate.NodeID) bool {
	g := rc.gossip.Load()
	if g == nil {
		return false
	}
	for _, m := range g.Membership.Members() {
		if m.ID == id {
			return m.Status != serfevents.StatusLeft
		}
	}
	return false
}

// attach subscribes to the gossip members and starts the leader's
// reconciliation of the Raft configuration.
func (rc *raftConsensus) attach() error {
	sub, err := rc.a.gossip.Subscribe(rc.onEvent)
	if err != nil {
		return fmt.Errorf("agent: raft: %w", err)
	}
	rc.sub = sub
	rc.gossip.Store(rc.a.gossip)
	go rc.reconcileLoop()
	return nil
}

// raftServerOf reads a member's Raft identity from its tags.
func raftServerOf(id dstate.NodeID, tags map[string]string) (raftpersist.Server, bool) {
	addr := tags[serfevents.TagRaft]
	role := tags[serfevents.TagRaftRole]
	if addr == "" || (role != serfevents.RaftRoleVoter && role != serfevents.RaftRoleNonvoter) {
		return raftpersist.Server{}, false
	}
	return raftpersist.Server{ID: id, Address: addr, Nonvoter: role == serfevents.RaftRoleNonvoter}, true
}

func (rc *raftConsensus) onEvent(ev dstate.ClusterEvent) {
	if ev.Kind != dstate.NodeJoined && ev.Kind != dstate.NodeUpdated {
		return
	}
	if srv, ok := raftServerOf(ev.Node, ev.Tags); ok {
		rc.observe(srv) // counted once its Raft handshake succeeds
	}
}

// reconcileLoop runs on every server; only the leader acts.
func (rc *raftConsensus) reconcileLoop() {
	defer close(rc.done)
	every := 2 * time.Second
	if rc.a.cfg.Fast {
		every = 300 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-rc.stop:
			return
		case <-t.C:
			rc.reprobe()
			if rc.store.IsLeader() {
				rc.reconcile()
			}
		case <-rc.kick:
			if rc.store.IsLeader() {
				rc.reconcile()
			}
		}
	}
}

// nudge asks the reconcile loop for a pass soon.
func (rc *raftConsensus) nudge() {
	select {
	case rc.kick <- struct{}{}:
	default:
	}
}

func (rc *raftConsensus) reconcile() {
	servers, err := rc.store.Servers()
	if err != nil {
		return
	}
	inConfig := map[dstate.NodeID]raftpersist.Server{}
	for _, s := range servers {
		inConfig[s.ID] = s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, m := range rc.a.gossip.members() {
		id := dstate.NodeID(m.Name)
		srv, ok := raftServerOf(id, m.Tags)
		cur, member := inConfig[id]
		switch {
		case m.Status == "alive" && ok && (!member || cur.Address != srv.Address):
			if !rc.probe(ctx, srv) {
				continue // named in health and logged by probe
			}
			add := rc.store.AddVoter
			if srv.Nonvoter {
				add = rc.store.AddNonvoter
			}
			if err := add(ctx, id, srv.Address); err != nil {
				rc.a.log.Warn("adding a raft server failed", "server", id, "err", err)
			} else {
				rc.a.log.Info("added raft server", "server", id, "addr", srv.Address)
			}
		case m.Status == "left" && member && id != rc.store.ID():
			if err := rc.store.RemoveServer(ctx, id); err != nil {
				rc.a.log.Warn("removing a raft server failed", "server", id, "err", err)
			} else {
				rc.a.log.Info("removed raft server that left", "server", id)
			}
		}
	}
}

// statusPeerTimeout bounds how long the Raft status waits for the other
// servers' figures.
const statusPeerTimeout = time.Second

func (rc *raftConsensus) status(ctx context.Context) (RaftStatus, error) {
	id, addr := rc.store.Leader()
	local := rc.store.Raft().Stats()
	st := RaftStatus{Enabled: true, Leader: string(id), LeaderAddr: addr, Extra: RaftMetadata(local)}
	st.State = rc.store.Raft().State().String()
	// This server's own figures come from its own Raft, so they are there
	// even when no other server answers.
	st.Term, _ = strconv.ParseUint(local["term"], 10, 64)
	st.CommitIndex, _ = strconv.ParseUint(local["commit_index"], 10, 64)
	st.AppliedIdx, _ = strconv.ParseUint(local["applied_index"], 10, 64)
	// A server that accepts connections but does not answer (paused,
	// overloaded) must not hold up the status: the others are asked for at
	// most statusPeerTimeout, and it shows as unreachable.
	sctx, cancel := context.WithTimeout(ctx, statusPeerTimeout)
	defer cancel()
	cs, err := rc.store.Stats(sctx)
	if err != nil {
		return st, nil // leaderless: say what is known
	}
	for _, p := range cs.Peers {
		if p.ID == rc.store.ID() {
			st.Term, st.CommitIndex, st.AppliedIdx = p.Term, p.CommitIndex, p.AppliedIndex
		}
		lc := int64(-1)
		if p.LastContact >= 0 {
			lc = p.LastContact.Milliseconds()
		}
		state := strings.ToLower(p.State)
		if p.Err != "" {
			state = "unreachable"
		}
		st.Peers = append(st.Peers, RaftPeer{
			ID: string(p.ID), Address: p.Address, Suffrage: strings.ToLower(p.Suffrage), Leader: p.ID == cs.Leader,
			State: state, Error: p.Err, MatchIndex: p.LastLogIndex, TrailsBy: p.Trailing, LastContactMs: lc,
		})
	}
	return st, nil
}

func (rc *raftConsensus) bootstrap(_ context.Context, servers []string) (BootstrapResult, error) {
	var list []raftpersist.Server
	if len(servers) == 0 {
		list = []raftpersist.Server{{ID: rc.store.ID(), Address: rc.store.Addr()}}
	}
	for _, s := range servers {
		id, addr, ok := strings.Cut(s, "=")
		if !ok {
			// A bare node ID: its Raft address comes from its gossip tags.
			found := false
			for _, m := range rc.a.gossip.members() {
				if m.Name == s {
					if srv, ok := raftServerOf(dstate.NodeID(s), m.Tags); ok {
						list, found = append(list, srv), true
					}
				}
			}
			if !found {
				return BootstrapResult{}, badRequest{fmt.Errorf("server %q: no gossip member with a raft address by that name (use id=host:port)", s)}
			}
			continue
		}
		list = append(list, raftpersist.Server{ID: dstate.NodeID(id), Address: addr})
	}
	// A node with a Raft configuration already has a group: bootstrapping
	// again changes nothing.
	if existing, err := rc.store.Servers(); err == nil && len(existing) > 0 {
		return BootstrapResult{Bootstrapped: false, Servers: serverList(existing)}, nil
	}
	if err := rc.store.Bootstrap(list); err != nil {
		return BootstrapResult{}, badRequest{err}
	}
	return BootstrapResult{Bootstrapped: true, Servers: serverList(list)}, nil
}

// serverList writes servers as id=address.
func serverList(servers []raftpersist.Server) []string {
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = string(s.ID) + "=" + s.Address
	}
	return out
}

func (rc *raftConsensus) close() error {
	if rc.sub != 0 {
		_ = rc.a.gossip.Unsubscribe(rc.sub)
		close(rc.stop)
		<-rc.done
	}
	rc.reach.close()
	return rc.store.Close()
}
