package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/dstate-go/dstate/pkg/agent"
)

// fakeAgent is an httptest.Server that implements the admin API contract of
// pkg/agent/api.go with canned, deterministic data, and records what it
// was asked.
type fakeAgent struct {
	srv   *httptest.Server
	token string // required bearer token; "" accepts any request

	mu           sync.Mutex
	requests     []string // "METHOD /path?query", plus " body" when one was sent
	health       string   // health status to report
	bootstrapped bool
	raftDisabled bool                         // the agent is not a Raft server
	kv           map[string]map[string]string // state → key → value on n1
}

// newFakeAgent starts a fake agent closed at the end of the test.
func newFakeAgent(t testing.TB) *fakeAgent {
	t.Helper()
	f := &fakeAgent{
		health: "healthy",
		kv: map[string]map[string]string{
			"kv":         {"user:42": "alice", "a/b": "slash", "a b?c": "odd"},
			"durable-kv": {"config/limit": "100"},
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", f.handleHealth)
	mux.HandleFunc("GET /v1/members", f.handleMembers)
	mux.HandleFunc("GET /v1/states", f.handleStates)
	mux.HandleFunc("GET /v1/states/{name}", f.handleDump)
	mux.HandleFunc("GET /v1/kv/{key}", f.handleGet)
	mux.HandleFunc("PUT /v1/kv/{key}", f.handleWrite)
	mux.HandleFunc("DELETE /v1/kv/{key}", f.handleWrite)
	mux.HandleFunc("POST /v1/join", f.handleJoin)
	mux.HandleFunc("POST /v1/leave", func(w http.ResponseWriter, r *http.Request) {
		writeOK(w, agent.LeaveResult{Raft: agent.LeaveRaftRemoved, Transferred: true, TookMs: 412})
	})
	mux.HandleFunc("GET /v1/raft", f.handleRaft)
	mux.HandleFunc("POST /v1/raft/bootstrap", f.handleBootstrap)
	mux.HandleFunc("POST /v1/raft/remove-peer", f.handleRemovePeer)
	mux.HandleFunc("POST /v1/force-leave", f.handleForceLeave)
	mux.HandleFunc("GET /v1/keyring", f.handleKeyring)
	mux.HandleFunc("POST /v1/keyring/{op}", f.handleKeyOp)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, "# HELP dstate_sync_total Syncs by state.\n# TYPE dstate_sync_total counter\n"+
			"dstate_sync_total{state=\"kv\"} 42\n")
	})
	mux.HandleFunc("GET /v1/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("GET /v1/broken", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusInternalServerError, "state kv: engine stopped")
	})
	f.srv = httptest.NewServer(f.middleware(mux))
	t.Cleanup(f.srv.Close)
	return f
}

// middleware checks the token and records the request.
func (f *fakeAgent) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		line := r.Method + " " + r.URL.RequestURI()
		if len(body) > 0 {
			line += " " + string(body)
		}
		f.mu.Lock()
		f.requests = append(f.requests, line)
		token := f.token
		f.mu.Unlock()
		if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
			writeError(w, http.StatusUnauthorized, "invalid or missing token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// seen returns the recorded requests.
func (f *fakeAgent) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

func writeOK(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(agent.APIError{Error: msg})
}

func (f *fakeAgent) handleHealth(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	status := f.health
	f.mu.Unlock()
	h := agent.Health{Node: "n1", Status: status, Ready: true, States: []agent.StateHealth{
		{State: "durable-kv", Status: "healthy", HealthyPeers: 2, StaleAfterMs: 6000},
		{State: "kv", Status: "healthy", HealthyPeers: 2, StaleAfterMs: 6000},
	}, Raft: &agent.RaftHealth{State: "follower", Leader: "n2", Term: 4, Voters: []string{"n1", "n2", "n3"}, LastContactMs: 42}}
	switch status {
	case "degraded":
		h.States[1] = agent.StateHealth{State: "kv", Status: "degraded", HealthyPeers: 1, StalePeers: 1, StaleAfterMs: 6000,
			Stale: []agent.PeerHealth{{Node: "n3", Reason: "view not renewed for 7.5s (stale after 6s)", SyncedAgoMs: 7500}}}
	case "unhealthy":
		h.Ready, h.Reasons = false, []string{"no Raft leader known (this server is candidate in term 5)"}
		h.Raft = &agent.RaftHealth{State: "candidate", Term: 5, Voters: []string{"n1", "n2", "n3"}, LastContactMs: 12000}
		h.States[1] = agent.StateHealth{State: "kv", Status: "degraded", HealthyPeers: 1, FailingPeers: 1, StaleAfterMs: 6000,
			Failing: []agent.PeerHealth{{Node: "n3", Reason: "membership reports it failed", SyncedAgoMs: 12000}}}
		h.UnreachableServers = []agent.UnreachableServer{{ID: "n3", Address: "127.0.0.1:9381", Reason: "dial tcp 127.0.0.1:9381: connect: connection refused"}}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable) // the agent's answer when unhealthy
		json.NewEncoder(w).Encode(h)
		return
	}
	writeOK(w, h)
}

func (f *fakeAgent) handleMembers(w http.ResponseWriter, r *http.Request) {
	p := agent.MemberProtocol{Min: 1, Max: 5, Cur: 2, DelegateMin: 2, DelegateMax: 5, DelegateCur: 4}
	writeOK(w, []agent.Member{
		{Name: "n1", Addr: "127.0.0.1:7946", Status: "alive", Tags: map[string]string{"transport": "127.0.0.1:7947", "raft": "127.0.0.1:7381"}, Protocol: p},
		{Name: "n2", Addr: "127.0.0.1:8946", Status: "alive", Tags: map[string]string{"transport": "127.0.0.1:8947", "raft": "127.0.0.1:8381"}, Protocol: p},
		{Name: "n3", Addr: "127.0.0.1:9946", Status: "failed", Protocol: p},
		{Name: "n4", Addr: "127.0.0.1:6946", Status: "left", Protocol: p},
	})
}

func (f *fakeAgent) handleStates(w http.ResponseWriter, r *http.Request) {
	writeOK(w, []agent.StateInfo{
		{Name: "durable-kv", Kind: "simple", WireVersion: 1, Durability: "raft", Strategy: "active-push", Views: 3, Generation: "v1700000000000:3"},
		{Name: "kv", Kind: "delta", WireVersion: 1, Durability: "memory", Strategy: "feed-lazy-pull", Views: 3, Generation: "v1700000000000:7"},
	})
}

func (f *fakeAgent) handleDump(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	f.mu.Lock()
	own, ok := f.kv[name]
	ownCopy := map[string]string{}
	for k, v := range own {
		ownCopy[k] = v
	}
	f.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no state %q", name))
		return
	}
	q := r.URL.Query()
	d := agent.StateDump{State: name, Consistency: "local", Views: []agent.ViewEntry{
		{Node: "n1", Generation: "v1700000000000:7", Incarnation: 1700000000000, Age: 7, SyncedAgoMs: 0, ModifiedMs: 1700000123456, Value: ownCopy},
		{Node: "n2", Generation: "v1700000000500:2", Incarnation: 1700000000500, Age: 2, SyncedAgoMs: 1250, ModifiedMs: 1700000120000, Value: map[string]string{"user:7": "bob"}},
		{Node: "n3", Generation: "v1700000000900:4", Incarnation: 1700000000900, Age: 4, Pending: "v1700000000900:5", SyncedAgoMs: 95000, ModifiedMs: 1700000030000, Value: map[string]string{}},
	}, StalePeers: []string{"n3"}}
	switch {
	case q.Get("consistent") == "true":
		d.Consistency, d.StalePeers = "linearizable", nil
		d.Views[2].Pending = ""
	case q.Get("max_staleness") != "":
		d.Consistency, d.StalePeers = "refreshed", nil
		d.Views[2].Pending = ""
	}
	if n := q.Get("node"); n != "" {
		var only []agent.ViewEntry
		for _, v := range d.Views {
			if v.Node == n {
				only = append(only, v)
			}
		}
		d.Views = only
	}
	writeOK(w, d)
}

func (f *fakeAgent) handleGet(w http.ResponseWriter, r *http.Request) {
	key, state, node := r.PathValue("key"), r.URL.Query().Get("state"), r.URL.Query().Get("node")
	if node == "" {
		node = "n1"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.kv[state]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no state %q", state))
		return
	}
	v, found := m[key]
	if node != "n1" {
		v, found = "", false
		if key == "user:7" && node == "n2" {
			v, found = "bob", true
		}
	}
	writeOK(w, agent.KVValue{State: state, Node: node, Key: key, Value: v, Found: found, Generation: "v1700000000000:7"})
}

func (f *fakeAgent) handleWrite(w http.ResponseWriter, r *http.Request) {
	key, state := r.PathValue("key"), r.URL.Query().Get("state")
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.kv[state]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no state %q", state))
		return
	}
	res := agent.WriteResult{State: state, Node: "n1", Key: key, Generation: "v1700000000000:8"}
	if r.Method == http.MethodPut {
		m[key] = string(body)
	} else if _, held := m[key]; held {
		delete(m, key)
	} else {
		res.Generation, res.Unchanged = "v1700000000000:7", true
	}
	writeOK(w, res)
}

func (f *fakeAgent) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req agent.JoinRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Addrs) == 0 {
		writeError(w, http.StatusBadRequest, "join: no addresses")
		return
	}
	joined := 0
	for _, a := range req.Addrs {
		if !strings.HasPrefix(a, "bad") {
			joined++
		}
	}
	writeOK(w, agent.JoinResult{Joined: joined})
}

func (f *fakeAgent) handleRaft(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	disabled := f.raftDisabled
	f.mu.Unlock()
	if disabled {
		writeOK(w, agent.RaftStatus{Enabled: false})
		return
	}
	writeOK(w, agent.RaftStatus{
		Enabled: true, State: "Leader", Leader: "n1", LeaderAddr: "127.0.0.1:7381",
		Term: 3, CommitIndex: 120, AppliedIdx: 119,
		Peers: []agent.RaftPeer{
			{ID: "n1", Address: "127.0.0.1:7381", Suffrage: "voter", Leader: true, State: "leader", MatchIndex: 120},
			{ID: "n2", Address: "127.0.0.1:8381", Suffrage: "voter", State: "follower", MatchIndex: 118, TrailsBy: 2, LastContactMs: 40},
			{ID: "n3", Address: "127.0.0.1:9381", Suffrage: "nonvoter", State: "follower", MatchIndex: 90, TrailsBy: 30, LastContactMs: 2300},
			{ID: "n4", Address: "127.0.0.1:10381", Suffrage: "voter", State: "unreachable", LastContactMs: 75000,
				Error: "raftpersist: dial 127.0.0.1:10381: connect: connection refused"},
		},
		Extra: agent.RaftMetadata{"num_peers": "2", "last_log_index": "120", "protocol_version": "3"},
	})
}

func (f *fakeAgent) handleBootstrap(w http.ResponseWriter, r *http.Request) {
	var req agent.BootstrapRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bootstrap: "+err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.raftDisabled {
		writeError(w, http.StatusConflict, "not enabled on this agent: bootstrap needs a server agent")
		return
	}
	again := f.bootstrapped // again: not an error, nothing changes
	f.bootstrapped = true
	servers := req.Servers
	if len(servers) == 0 || again {
		servers = []string{"n1=127.0.0.1:7381"}
	}
	for i, s := range servers {
		if !strings.Contains(s, "=") {
			servers[i] = s + "=127.0.0.1:9381"
		}
	}
	writeOK(w, agent.BootstrapResult{Bootstrapped: !again, Servers: servers})
}

// handleRemovePeer removes n2, n3 or n4; n1 is the last voter once n2 and
// n4 are gone, and other IDs are not servers.
func (f *fakeAgent) handleRemovePeer(w http.ResponseWriter, r *http.Request) {
	var req agent.RemovePeerRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "remove-peer: "+err.Error())
		return
	}
	switch req.ID {
	case "n2", "n3", "n4":
		writeOK(w, agent.RemovePeerResult{ID: req.ID, Address: "127.0.0.1:" + map[string]string{"n2": "8381", "n3": "9381", "n4": "10381"}[req.ID], Voters: 2})
	case "n1":
		writeError(w, http.StatusConflict, "raft remove-peer n1: it is the last voter; the Raft group would have none left")
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("not found: raft remove-peer: %q is not in the Raft configuration (see dstatectl raft peers)", req.ID))
	}
}

// handleForceLeave forces out n4 (failed); n2 is alive.
func (f *fakeAgent) handleForceLeave(w http.ResponseWriter, r *http.Request) {
	var req agent.ForceLeaveRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "force-leave: "+err.Error())
		return
	}
	switch req.Node {
	case "n4":
		writeOK(w, agent.ForceLeaveResult{Node: "n4", Was: "failed", Prune: req.Prune})
	case "n2":
		writeError(w, http.StatusConflict, "force-leave n2: the member is alive: only a failed member can be forced out (stop it, or run dstatectl leave on it)")
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("not found: force-leave: %q is not a member (see dstatectl members)", req.Node))
	}
}

// The keys of the fake cluster's keyring.
const (
	fakeKeyPrimary = "5s0qX7d3fYq9o1Vw1mYtqzR3ZQ6f0F6Wcm6vS8b2k1A="
	fakeKeyNew     = "T9n8Kq3yB4m1Zc0xVd7sLwE2Rj5uHa6PfGiOeNbMtYk="
)

func (f *fakeAgent) handleKeyring(w http.ResponseWriter, r *http.Request) {
	writeOK(w, agent.KeyringStatus{Encrypted: true, Primary: fakeKeyPrimary, Members: 3,
		Keys: map[string]int{fakeKeyPrimary: 3, fakeKeyNew: 2}})
}

func (f *fakeAgent) handleKeyOp(w http.ResponseWriter, r *http.Request) {
	var req agent.KeyRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Key == "" {
		writeError(w, http.StatusBadRequest, "keyring: no key")
		return
	}
	switch op := r.PathValue("op"); op {
	case "install", "use":
	case "remove":
		if req.Key == fakeKeyPrimary {
			writeError(w, http.StatusConflict, "keyring: cannot remove the primary key")
			return
		}
	default:
		writeError(w, http.StatusNotFound, "keyring: unknown operation "+op)
		return
	}
	writeOK(w, struct{}{})
}
