package agent

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// Health, readiness and liveness.
//
// Three endpoints serve three users:
//
//   - GET /v1/health/live is the liveness signal (a Kubernetes
//     livenessProbe, a process supervisor): 200 while the agent runs and
//     serves its API, 503 once it is stopping. It never looks at other
//     nodes, so a peer that is down cannot make a liveness probe restart
//     the healthy nodes.
//   - GET /v1/health/ready is the readiness signal (a Kubernetes
//     readinessProbe, a load balancer's health check): 200 when this node
//     answers reads and writes — its local states are loaded and, on a
//     Raft server, a Raft leader is known and durable-kv is loaded — else
//     503 with the reasons ([Readiness]).
//   - GET /v1/health (and dstatectl health) is the full report for
//     operators and monitoring ([Health]): per state, the peers in sync,
//     stale or failing, named; the Raft group; the servers whose Raft
//     handshake failed. It answers 200 when the node is healthy or
//     degraded and 503 when it is unhealthy. It describes this node's view
//     of the cluster: one peer down makes every other node degraded, so
//     it is an alerting signal, not a probe.
//
// A peer is classified once per state, in exactly one class: failing when
// it counts as failed (see dstate's doc.go, "Failure": the membership
// layer reported it, or it left a snapshot request unanswered) or has
// consecutive sync failures; else stale when its view is stale; else
// healthy.
//
// A view is stale relative to its state's own sync schedule: whatever
// renews an idle view (the digest every digest_interval for a state that
// pushes its changes, or one without a periodic full sync; the periodic
// full sync otherwise) renews it at least every period P, and a renewal
// that finds the view behind pulls it within the state's pull timeout T.
// A view not renewed for 2P+T has missed its schedule and is stale (at the
// defaults: 6 s for kv and durable-kv, 7 s for load). A newer generation
// announced but not received yet is no reason on its own: a state that
// does not push waits for its next sync by design. With max_staleness the
// report uses that bound instead, and a pending generation counts too (as
// a query with that bound would see it).
//
// A state is healthy when none of its peers is stale or failing, degraded
// when this node and the peers in sync with it are still a majority of the
// nodes it knows, and unhealthy otherwise (this node may be cut off). The
// node's status is the worst of its states', degraded at least while a
// server is unreachable, and unhealthy while it is not ready.

// Liveness is the answer of GET /v1/health/live.
type Liveness struct {
	Node string `json:"node"`
	Live bool   `json:"live"`
	// Reason says why the agent is not live.
	Reason string `json:"reason,omitempty"`
}

// Readiness is the answer of GET /v1/health/ready.
type Readiness struct {
	Node  string `json:"node"`
	Ready bool   `json:"ready"`
	// Reasons say why the node is not ready.
	Reasons []string `json:"reasons,omitempty"`
}

// PeerHealth names a stale or failing peer of one state.
type PeerHealth struct {
	Node   string `json:"node"`
	Reason string `json:"reason"`
	// SyncedAgoMs is the time since the view was last renewed; -1 when
	// there is no view.
	SyncedAgoMs int64 `json:"synced_ago_ms"`
}

// RaftHealth is the Raft group as one server sees it, from its own state
// (no other server is asked).
type RaftHealth struct {
	State  string `json:"state"` // leader, follower, candidate or shutdown
	Leader string `json:"leader,omitempty"`
	Term   uint64 `json:"term"`
	// Voters are the voting servers of the latest configuration, sorted.
	Voters []string `json:"voters"`
	// LastContactMs is the time since this server last heard from the
	// leader: 0 on the leader, -1 when never.
	LastContactMs int64 `json:"last_contact_ms"`
	// Error says why the configuration could not be read.
	Error string `json:"error,omitempty"`
}

// Health statuses.
const (
	StatusHealthy   = "healthy"
	StatusDegraded  = "degraded"
	StatusUnhealthy = "unhealthy"
)

// Live reports whether the agent runs: false once it is stopping.
func (a *Agent) Live() Liveness {
	l := Liveness{Node: a.cfg.NodeID, Live: true}
	if a.stopping.Load() {
		l.Live, l.Reason = false, "the agent is stopping"
	}
	return l
}

// Ready reports whether the node answers reads and writes: its local
// states are loaded and, on a Raft server, a Raft leader is known and
// durable-kv is loaded. It asks no other node.
func (a *Agent) Ready() Readiness {
	r := Readiness{Node: a.cfg.NodeID}
	if a.stopping.Load() {
		r.Reasons = append(r.Reasons, "the agent is leaving the cluster and stopping")
	}
	if !a.states.has(KVState, LoadState) {
		r.Reasons = append(r.Reasons, "the local states (kv, load) are not loaded yet")
	}
	if a.raft != nil {
		if id, _ := a.raft.store.Leader(); id == "" {
			rf := a.raft.store.Raft()
			r.Reasons = append(r.Reasons, fmt.Sprintf("no Raft leader known (this server is %s in term %d)", strings.ToLower(rf.State().String()), rf.CurrentTerm()))
		}
		if a.builtin == nil || !a.builtin.durableLoaded() {
			r.Reasons = append(r.Reasons, "durable-kv is not loaded: it waits for the Raft cluster to elect a leader and load it")
		}
	}
	r.Ready = len(r.Reasons) == 0
	return r
}

// Health returns the node's health over every state (see the comment at
// the top of health.go). maxStaleness, when positive, is the bound past
// which a view counts as stale in every state, a pending generation
// included; zero judges each view against its state's sync schedule.
func (a *Agent) Health(ctx context.Context, maxStaleness time.Duration) (Health, error) {
	// Asking every state first marks the peers whose snapshot request
	// expired unresponsive, as a query would.
	nh, err := a.node.Health(ctx, -1)
	if err != nil {
		return Health{}, err
	}
	handles := a.states.snapshot()
	digests := digestEvery(a.cfg)
	out := Health{Node: a.cfg.NodeID, States: []StateHealth{}}
	for _, eh := range nh.States {
		sh := engineHealth(eh)
		if hs, ok := handles[eh.State].(healthSource); ok {
			if sh, err = hs.health(ctx, maxStaleness, digests); err != nil {
				return Health{}, err
			}
		}
		out.States = append(out.States, sh)
	}
	slices.SortFunc(out.States, func(x, y StateHealth) int { return cmp.Compare(x.State, y.State) })
	rd := a.Ready()
	out.Ready, out.Reasons = rd.Ready, rd.Reasons
	if a.raft != nil {
		out.Raft = a.raft.health()
		out.UnreachableServers = a.raft.reach.unreachable()
	}
	out.Status = StatusHealthy
	if len(out.UnreachableServers) > 0 {
		out.Status = StatusDegraded
	}
	for _, s := range out.States {
		switch s.Status {
		case StatusUnhealthy:
			out.Reasons = append(out.Reasons, fmt.Sprintf("%s: this node and the %d of %d peers in sync with it are not a majority of the %d nodes it knows",
				s.State, s.HealthyPeers, s.HealthyPeers+s.StalePeers+s.FailingPeers, s.HealthyPeers+s.StalePeers+s.FailingPeers+1))
			out.Status = StatusUnhealthy
		case StatusDegraded:
			if out.Status == StatusHealthy {
				out.Status = StatusDegraded
			}
		}
	}
	if !out.Ready {
		out.Status = StatusUnhealthy
	}
	return out, nil
}

// healthSource is a registered state whose peers the report names.
type healthSource interface {
	health(ctx context.Context, maxStaleness, digestEvery time.Duration) (StateHealth, error)
}

// engineHealth reports a state registered on the node directly (not
// through Register), with the library's counts.
func engineHealth(eh dstate.EngineHealth) StateHealth {
	return StateHealth{State: eh.State, Status: eh.Status.String(), HealthyPeers: eh.HealthyPeers, StalePeers: eh.StalePeers, FailingPeers: eh.FailingPeers}
}

func (h *shardHandle[S, V]) health(ctx context.Context, maxStaleness, digestEvery time.Duration) (StateHealth, error) {
	cfg := h.shard.Config()
	sts, err := h.shard.PeerStatuses(ctx)
	if err != nil {
		return StateHealth{}, err
	}
	views := h.shard.Views()
	now := h.clock.Now()
	bound, strict := staleAfter(cfg, digestEvery), false
	if maxStaleness > 0 {
		bound, strict = maxStaleness, true
	}
	pull := cfg.EffectivePullTimeout()
	sh := StateHealth{State: h.shard.StateName(), StaleAfterMs: bound.Milliseconds()}
	for _, st := range sts {
		v, hasView := views.Get(st.Node)
		ago, age := int64(-1), time.Duration(0)
		if hasView {
			age = now.Sub(views.SyncedAt(v))
			ago = age.Milliseconds()
		}
		peer := PeerHealth{Node: string(st.Node), SyncedAgoMs: ago}
		switch {
		case st.Failed != "":
			peer.Reason = st.Failed
		case st.ConsecutiveFailures > 0:
			peer.Reason = fmt.Sprintf("%d consecutive sync failures, the last: %s", st.ConsecutiveFailures, st.LastError)
		case !hasView:
			continue // departed since the statuses were taken
		case bound > 0 && age > bound:
			peer.Reason = fmt.Sprintf("view not renewed for %s (stale after %s)", age.Round(time.Millisecond), bound)
		case strict && v.HasPending():
			peer.Reason = fmt.Sprintf("a newer generation %s is announced and not received yet", v.Pending)
		case bound == 0 && v.HasPending() && age > pull:
			peer.Reason = fmt.Sprintf("a newer generation %s announced %s ago is not received yet", v.Pending, age.Round(time.Millisecond))
		default:
			sh.HealthyPeers++
			continue
		}
		if st.Failed != "" || st.ConsecutiveFailures > 0 {
			sh.Failing = append(sh.Failing, peer)
		} else {
			sh.Stale = append(sh.Stale, peer)
		}
	}
	sh.StalePeers, sh.FailingPeers = len(sh.Stale), len(sh.Failing)
	sh.Status = stateStatus(sh.HealthyPeers, sh.StalePeers+sh.FailingPeers)
	return sh, nil
}

// stateStatus is healthy with no bad peer, degraded while this node and
// its healthy peers are a strict majority of the nodes, else unhealthy.
func stateStatus(healthy, bad int) string {
	switch {
	case bad == 0:
		return StatusHealthy
	case (healthy+1)*2 > healthy+bad+1:
		return StatusDegraded
	}
	return StatusUnhealthy
}

// staleAfter is how long a view of a state with cfg may go without a
// renewal before it counts as stale: two renewal periods and the pull
// timeout (see the comment at the top of health.go); 0 when no schedule
// renews an idle view (no digests and no periodic full sync).
func staleAfter(cfg dstate.StateConfig, digestEvery time.Duration) time.Duration {
	s := cfg.SyncStrategy
	period := s.PeriodicFullSync
	if digestEvery > 0 && (s.PushMode == dstate.ActivePush || period <= 0) && (period <= 0 || digestEvery < period) {
		period = digestEvery
	}
	if period <= 0 {
		return 0
	}
	return 2*period + cfg.EffectivePullTimeout()
}

// digestEvery is the node's effective digest interval (0: off), as
// node.Config.DigestInterval reads digest_interval.
func digestEvery(cfg Config) time.Duration {
	switch d := time.Duration(cfg.DigestInterval); {
	case d < 0:
		return 0
	case d == 0:
		return node.DefaultDigestInterval
	default:
		return d
	}
}

// health is the Raft group as this server sees it.
func (rc *raftConsensus) health() *RaftHealth {
	r := rc.store.Raft()
	st := r.State()
	h := &RaftHealth{State: strings.ToLower(st.String()), Term: r.CurrentTerm(), Voters: []string{}, LastContactMs: -1}
	id, _ := rc.store.Leader()
	h.Leader = string(id)
	switch lc := r.LastContact(); {
	case h.State == "leader":
		h.LastContactMs = 0
	case !lc.IsZero():
		h.LastContactMs = time.Since(lc).Milliseconds()
	}
	srvs, err := rc.store.Servers()
	if err != nil {
		h.Error = err.Error()
		return h
	}
	for _, s := range srvs {
		if !s.Nonvoter {
			h.Voters = append(h.Voters, string(s.ID))
		}
	}
	slices.Sort(h.Voters)
	return h
}

// getHealth answers GET /v1/health: 200 when healthy or degraded, 503
// when unhealthy, the report either way.
func (s *apiServer) getHealth(w http.ResponseWriter, r *http.Request) {
	maxStale, err := duration(r, "max_staleness", 0)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	h, err := s.b.Health(r.Context(), maxStale)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	status := http.StatusOK
	if h.Status == StatusUnhealthy {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

// getLive answers GET /v1/health/live.
func (s *apiServer) getLive(w http.ResponseWriter, _ *http.Request) {
	l := s.b.Live()
	status := http.StatusOK
	if !l.Live {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, l)
}

// getReady answers GET /v1/health/ready.
func (s *apiServer) getReady(w http.ResponseWriter, _ *http.Request) {
	rd := s.b.Ready()
	status := http.StatusOK
	if !rd.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rd)
}

// publicProbe reports whether r may skip the admin token under
// http_public_probes: a GET or HEAD of a probe or of /metrics.
func publicProbe(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/v1/health/live", "/v1/health/ready", "/metrics":
		return true
	}
	return false
}
