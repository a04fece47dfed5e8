package agent

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dstate-go/dstate/internal/ratelog"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/raftpersist"
)

// UnreachableServer is a server gossip announces whose Raft transport
// refused this node's handshake (or did not answer): it is neither counted
// toward bootstrap_expect nor added as a voter until a handshake succeeds.
type UnreachableServer struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// serverReach records which servers announced by gossip passed a Raft
// handshake probe (raftpersist.Store.Probe) from this node. Only those are
// observed for bootstrap-expect and added as voters by the leader.
type serverReach struct {
	mu      sync.Mutex
	ok      map[dstate.NodeID]string // the address that passed the probe
	bad     map[dstate.NodeID]UnreachableServer
	probing map[dstate.NodeID]bool
	closed  bool
	wg      sync.WaitGroup // background probes
	warn    ratelog.Limiter

	ctx    context.Context // ends background probes at close
	cancel context.CancelFunc
}

func newServerReach(warnEvery time.Duration) *serverReach {
	ctx, cancel := context.WithCancel(context.Background())
	return &serverReach{
		ok: map[dstate.NodeID]string{}, bad: map[dstate.NodeID]UnreachableServer{}, probing: map[dstate.NodeID]bool{},
		warn: ratelog.Limiter{Interval: warnEvery}, ctx: ctx, cancel: cancel,
	}
}

// close ends the background probes and waits for them.
func (r *serverReach) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}

// unreachable lists the servers whose last probe failed, by ID.
func (r *serverReach) unreachable() []UnreachableServer {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]UnreachableServer, 0, len(r.bad))
	for _, u := range r.bad {
		out = append(out, u)
	}
	slices.SortFunc(out, func(x, y UnreachableServer) int { return strings.Compare(x.ID, y.ID) })
	return out
}

// reached reports whether srv passed a probe at its current address.
func (r *serverReach) reached(srv raftpersist.Server) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok[srv.ID] == srv.Address
}

// forget drops what is known of the servers not in keep (members that
// left, failed or are gone).
func (r *serverReach) forget(keep map[dstate.NodeID]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.bad {
		if !keep[id] {
			delete(r.bad, id)
		}
	}
	for id := range r.ok {
		if !keep[id] {
			delete(r.ok, id)
		}
	}
}

// probe runs one handshake probe of srv and records its outcome; it
// reports whether the probe succeeded. A failure is logged at most once
// per server per limit_log_interval.
func (rc *raftConsensus) probe(ctx context.Context, srv raftpersist.Server) bool {
	err := rc.store.Probe(ctx, srv.ID, srv.Address)
	r := rc.reach
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.ok[srv.ID] = srv.Address
		if _, was := r.bad[srv.ID]; was {
			rc.a.log.Info("raft server reachable again", "server", string(srv.ID), "addr", srv.Address)
		}
		delete(r.bad, srv.ID)
		return true
	}
	delete(r.ok, srv.ID)
	reason := err.Error()
	r.bad[srv.ID] = UnreachableServer{ID: string(srv.ID), Address: srv.Address, Reason: reason}
	if ok, suppressed := r.warn.Allow(string(srv.ID)); ok {
		rc.a.log.Warn("raft server unreachable: not counted toward bootstrap_expect nor added as a voter",
			"server", string(srv.ID), "addr", srv.Address, "reason", reason, "suppressed", suppressed)
	}
	return false
}

// observe counts srv toward bootstrap-expect once it passes a probe. This
// node itself counts at once; another server is probed in the background
// (observe runs on the gossip delivery goroutine), unless a probe of it is
// already running.
func (rc *raftConsensus) observe(srv raftpersist.Server) {
	if srv.ID == rc.store.ID() {
		rc.observeReached(srv)
		return
	}
	r := rc.reach
	r.mu.Lock()
	if r.probing[srv.ID] || r.closed {
		r.mu.Unlock()
		return
	}
	r.probing[srv.ID] = true
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		ok := rc.probe(r.ctx, srv)
		r.mu.Lock()
		delete(r.probing, srv.ID)
		r.mu.Unlock()
		if ok {
			rc.observeReached(srv)
			rc.nudge() // the leader adds it back at once
		}
	}()
}

// observeReached hands a server that passed its probe to the store's
// bootstrap-expect count.
func (rc *raftConsensus) observeReached(srv raftpersist.Server) {
	if err := rc.store.ObserveServer(srv); err != nil {
		rc.a.log.Warn("raft bootstrap failed", "err", err)
	}
}

// reprobe probes again, in the background, every alive server member that
// has not passed a probe at its current address, and forgets servers that
// are no longer alive members. It runs on every server at each reconcile
// tick, so a server refused once is counted as soon as its handshake
// succeeds.
func (rc *raftConsensus) reprobe() {
	alive := map[dstate.NodeID]bool{}
	for _, m := range rc.a.gossip.members() {
		id := dstate.NodeID(m.Name)
		srv, ok := raftServerOf(id, m.Tags)
		if m.Status != "alive" || !ok {
			continue
		}
		alive[id] = true
		if id != rc.store.ID() && !rc.reach.reached(srv) {
			rc.observe(srv)
		}
	}
	rc.reach.forget(alive)
}
