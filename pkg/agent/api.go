package agent

// The admin API's JSON documents. The server (Agent.Handler) writes them and
// the dstatectl client reads them; field names are stable for scripts.
//
// Endpoints (all under the agent's HTTP address; a bearer token in the
// Authorization header when the agent has one). Every call that is not a
// GET sends Content-Type application/json, body or not (PUT /v1/kv/{key}
// may send application/octet-stream instead), or is refused with 415; a
// Host header other than the agent's address (without a token) and a
// browser's cross-origin Sec-Fetch-Site or Origin are refused with 403
// (see http_guard.go):
//
//	GET    /v1/health?max_staleness=5s       Health (200 healthy or degraded, 503 unhealthy)
//	GET    /v1/health/live                   Liveness (200 while the agent runs, else 503)
//	GET    /v1/health/ready                  Readiness (200 when ready, else 503 with the reasons)
//	GET    /v1/members                       []Member
//	GET    /v1/states                        []StateInfo
//	GET    /v1/states/{name}?node=&max_staleness=&consistent=true   StateDump
//	GET    /v1/states/{name}/watch?node=&every=&resume=   Server-Sent Events, one StateChange each (watch.go)
//	GET    /v1/kv/{key}?state=kv&node=       KVValue (the key as node holds it)
//	PUT    /v1/kv/{key}?state=kv             body: the raw value → WriteResult
//	DELETE /v1/kv/{key}?state=kv             WriteResult
//	POST   /v1/join                          JoinRequest → JoinResult
//	POST   /v1/leave                         → LeaveResult (the agent leaves, then shuts down)
//	GET    /v1/raft                          RaftStatus
//	POST   /v1/raft/bootstrap                BootstrapRequest → BootstrapResult
//	POST   /v1/raft/remove-peer              RemovePeerRequest → RemovePeerResult
//	POST   /v1/force-leave                   ForceLeaveRequest → ForceLeaveResult
//	GET    /v1/keyring                       KeyringStatus
//	POST   /v1/keyring/{install|use|remove}  KeyRequest → {}
//	GET    /metrics                          Prometheus text format
//	GET    /v1/openapi.json                  this list as an OpenAPI 3 document (openapi.json)
//
// A method a path does not serve is answered 405 with an Allow header. A
// JSON request body is one document with only the fields named here;
// anything after it is refused. Keys of the kv states are UTF-8 text
// without control characters, at most max_key_bytes long; values at most
// max_value_bytes.
// Every error is a 4xx or 5xx status with an APIError body. A connection
// over http_max_conns or http_max_conns_per_host is closed before any
// answer, and one that does not send its request within http_read_timeout
// is cut (see http_conns.go).

// APIError is the body of every error response.
type APIError struct {
	Error string `json:"error"`
}

// Health is a node's health over every registered state: the full report
// of GET /v1/health and dstatectl health (see health.go for what each
// status means and which endpoint fits which probe).
type Health struct {
	Node   string `json:"node"`
	Status string `json:"status"` // healthy, degraded or unhealthy
	// Ready is what GET /v1/health/ready answers; Reasons says why the
	// node is not ready, or why it is unhealthy.
	Ready   bool          `json:"ready"`
	Reasons []string      `json:"reasons,omitempty"`
	States  []StateHealth `json:"states"`
	// Raft is the Raft group as this server sees it (servers only).
	Raft *RaftHealth `json:"raft,omitempty"`
	// UnreachableServers are the servers gossip announces whose Raft
	// handshake from this node failed, with the reason (servers only).
	UnreachableServers []UnreachableServer `json:"unreachable_servers,omitempty"`
}

// StateHealth is one state's health as the node sees it. Each peer is
// counted once, in exactly one class: failing, else stale, else healthy.
type StateHealth struct {
	State        string `json:"state"`
	Status       string `json:"status"`
	HealthyPeers int    `json:"healthy_peers"`
	StalePeers   int    `json:"stale_peers"`
	FailingPeers int    `json:"failing_peers"`
	// StaleAfterMs is how long a view may go without being renewed before
	// it counts as stale: derived from the state's sync schedule, or the
	// max_staleness asked for (0: no schedule renews an idle view).
	StaleAfterMs int64 `json:"stale_after_ms"`
	// Stale and Failing name the peers of those classes, sorted, with
	// the reason.
	Stale   []PeerHealth `json:"stale,omitempty"`
	Failing []PeerHealth `json:"failing,omitempty"`
}

// Member is one cluster member as the membership layer sees it.
type Member struct {
	Name   string            `json:"name"`
	Addr   string            `json:"addr"`
	Status string            `json:"status"` // alive, leaving, left, failed
	Tags   map[string]string `json:"tags,omitempty"`
	// Protocol is the gossip protocol versions the member speaks.
	Protocol MemberProtocol `json:"protocol"`
}

// MemberProtocol is a member's gossip protocol versions: memberlist's
// (min, max, current) and serf's (delegate_*).
type MemberProtocol struct {
	Min         uint8 `json:"min"`
	Max         uint8 `json:"max"`
	Cur         uint8 `json:"cur"`
	DelegateMin uint8 `json:"delegate_min"`
	DelegateMax uint8 `json:"delegate_max"`
	DelegateCur uint8 `json:"delegate_cur"`
}

// StateInfo describes one registered state.
type StateInfo struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"` // simple or delta
	WireVersion uint32 `json:"wire_version"`
	Durability  string `json:"durability"` // memory, local or raft
	Strategy    string `json:"strategy"`
	Views       int    `json:"views"`
	Generation  string `json:"generation"` // of the node's own state
}

// StateDump is every view (or one node's) of one state held by the agent.
type StateDump struct {
	State string `json:"state"`
	// Consistency is "local" (the views as held), "refreshed" (stale peers
	// were asked first) or "linearizable" (every node's last committed
	// envelope, read through Raft).
	Consistency string      `json:"consistency"`
	Views       []ViewEntry `json:"views"`
	// StalePeers names the peers whose views are older than asked for.
	StalePeers []string `json:"stale_peers,omitempty"`
}

// ViewEntry is one node's view of a state.
type ViewEntry struct {
	Node        string `json:"node"`
	Generation  string `json:"generation"` // v{incarnation}:{age}
	Incarnation uint64 `json:"incarnation"`
	Age         uint64 `json:"age"`
	Pending     string `json:"pending,omitempty"` // a newer generation announced, not yet received
	SyncedAgoMs int64  `json:"synced_ago_ms"`
	ModifiedMs  int64  `json:"modified_unix_ms"`
	Value       any    `json:"value"`
}

// KVValue is one key of a kv state as one node holds it.
type KVValue struct {
	State      string `json:"state"`
	Node       string `json:"node"`
	Key        string `json:"key"`
	Value      string `json:"value"`
	Found      bool   `json:"found"`
	Generation string `json:"generation"`
}

// WriteResult is the outcome of a put or delete.
type WriteResult struct {
	State      string `json:"state"`
	Node       string `json:"node"`
	Key        string `json:"key"`
	Generation string `json:"generation"`
	// Unchanged is true when the write changed nothing: a delete of a key
	// the node does not hold (Generation is then the current one).
	Unchanged bool `json:"unchanged,omitempty"`
}

// JoinRequest asks the agent to join the cluster through seed addresses.
type JoinRequest struct {
	Addrs []string `json:"addrs"`
}

// JoinResult says how many seeds were reached.
type JoinResult struct {
	Joined int `json:"joined"`
}

// RaftStatus is the Raft group as the agent sees it.
type RaftStatus struct {
	Enabled     bool         `json:"enabled"`
	State       string       `json:"state,omitempty"` // Leader, Follower, Candidate, Shutdown
	Leader      string       `json:"leader,omitempty"`
	LeaderAddr  string       `json:"leader_addr,omitempty"`
	Term        uint64       `json:"term,omitempty"`
	CommitIndex uint64       `json:"commit_index,omitempty"`
	AppliedIdx  uint64       `json:"applied_index,omitempty"`
	Peers       []RaftPeer   `json:"peers,omitempty"`
	Extra       RaftMetadata `json:"extra,omitempty"`
}

// RaftMetadata is raft's own Stats map, verbatim.
type RaftMetadata map[string]string

// RaftPeer is one server of the Raft configuration.
type RaftPeer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Suffrage string `json:"suffrage"` // voter or nonvoter
	Leader   bool   `json:"leader"`
	// State is the server's Raft state as it reports it (leader, follower,
	// candidate), or "unreachable" when it could not be asked; Error then
	// says why, and MatchIndex and TrailsBy are unknown (0).
	State      string `json:"state"`
	Error      string `json:"error,omitempty"`
	MatchIndex uint64 `json:"match_index"`
	TrailsBy   uint64 `json:"trails_by"` // log entries behind the leader's last index
	// LastContactMs is the time since the server last heard from a leader;
	// for an unreachable server, when this agent leads, the time since its
	// heartbeats last reached it; -1 when unknown or never.
	LastContactMs int64 `json:"last_contact_ms"`
}

// BootstrapRequest bootstraps the Raft group with a server list
// ("id=raftaddr" or a bare node ID); empty means this agent alone.
type BootstrapRequest struct {
	Servers []string `json:"servers"`
}

// BootstrapResult says what a bootstrap did.
type BootstrapResult struct {
	// Bootstrapped is true when this call created the Raft group, false
	// when the agent already had one (nothing changed then).
	Bootstrapped bool `json:"bootstrapped"`
	// Servers are the group's servers as id=address: the new group's, or
	// the existing configuration's.
	Servers []string `json:"servers"`
}

// KeyringStatus lists the gossip keys installed in the cluster.
type KeyringStatus struct {
	Encrypted bool           `json:"encrypted"`
	Primary   string         `json:"primary,omitempty"`
	Keys      map[string]int `json:"keys"` // key → number of members holding it
	Members   int            `json:"members"`
}

// KeyRequest carries one base64 gossip key.
type KeyRequest struct {
	Key string `json:"key"`
}
