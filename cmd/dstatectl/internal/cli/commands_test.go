package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestOutputGolden runs each command against the fake agent, in both
// formats, and compares stdout, stderr and the exit status with
// testdata/out/*.golden.
func TestOutputGolden(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		setup func(*fakeAgent)
	}{
		{name: "members", args: []string{"members"}},
		{name: "members_json", args: []string{"--format", "json", "members"}},
		{name: "dump_all", args: []string{"dump"}},
		{name: "dump_all_json", args: []string{"--format", "json", "dump"}},
		{name: "dump_kv", args: []string{"dump", "kv"}},
		{name: "dump_kv_json", args: []string{"--format=json", "dump", "kv"}},
		{name: "dump_kv_node", args: []string{"dump", "--node", "n2", "kv"}},
		{name: "dump_kv_refreshed", args: []string{"dump", "--max-staleness", "2s", "kv"}},
		{name: "dump_kv_consistent_json", args: []string{"--format", "json", "dump", "--consistent", "durable-kv"}},
		{name: "dump_unknown_state", args: []string{"dump", "nosuch"}},
		{name: "get", args: []string{"get", "user:42"}},
		{name: "get_json", args: []string{"--format", "json", "get", "user:42"}},
		{name: "get_node", args: []string{"get", "--node", "n2", "user:7"}},
		{name: "get_missing", args: []string{"get", "nobody"}},
		{name: "get_missing_json", args: []string{"--format", "json", "get", "nobody"}},
		{name: "put", args: []string{"put", "user:43", "carol"}},
		{name: "put_json", args: []string{"--format", "json", "put", "--state", "durable-kv", "config/limit", "200"}},
		{name: "del", args: []string{"del", "user:42"}},
		{name: "del_json", args: []string{"--format", "json", "del", "user:42"}},
		{name: "del_missing", args: []string{"del", "no-such-key"}},
		{name: "health", args: []string{"health"}},
		{name: "health_json", args: []string{"--format", "json", "health"}},
		{name: "health_degraded", args: []string{"health", "--max-staleness", "5s"}, setup: func(f *fakeAgent) { f.health = "degraded" }},
		{name: "health_unhealthy_json", args: []string{"--format", "json", "health"}, setup: func(f *fakeAgent) { f.health = "unhealthy" }},
		{name: "health_unhealthy", args: []string{"health"}, setup: func(f *fakeAgent) { f.health = "unhealthy" }},
		{name: "metrics", args: []string{"metrics"}},
		{name: "raft_peers", args: []string{"raft", "peers"}},
		{name: "raft_peers_json", args: []string{"--format", "json", "raft", "peers"}},
		{name: "raft_status", args: []string{"raft", "status"}},
		{name: "raft_status_json", args: []string{"--format", "json", "raft", "status"}},
		{name: "bootstrap", args: []string{"bootstrap"}},
		{name: "bootstrap_servers", args: []string{"bootstrap", "--server", "n1=127.0.0.1:7381", "--server", "n2=127.0.0.1:8381", "--server", "n3"}},
		{name: "bootstrap_again", args: []string{"bootstrap"}, setup: func(f *fakeAgent) { f.bootstrapped = true }},
		{name: "bootstrap_json", args: []string{"--format", "json", "bootstrap"}},
		{name: "bootstrap_no_raft", args: []string{"bootstrap"}, setup: func(f *fakeAgent) { f.raftDisabled = true }},
		{name: "raft_peers_no_raft", args: []string{"raft", "peers"}, setup: func(f *fakeAgent) { f.raftDisabled = true }},
		{name: "raft_status_no_raft", args: []string{"raft", "status"}, setup: func(f *fakeAgent) { f.raftDisabled = true }},
		{name: "raft_status_no_raft_json", args: []string{"--format", "json", "raft", "status"}, setup: func(f *fakeAgent) { f.raftDisabled = true }},
		{name: "keyring_list", args: []string{"keyring", "list"}},
		{name: "keyring_list_json", args: []string{"--format", "json", "keyring", "list"}},
		{name: "keyring_install", args: []string{"keyring", "install", fakeKeyNew}},
		{name: "keyring_use_json", args: []string{"--format", "json", "keyring", "use", fakeKeyNew}},
		{name: "keyring_remove_primary", args: []string{"keyring", "remove", fakeKeyPrimary}},
		{name: "join", args: []string{"join", "127.0.0.1:8946", "bad.example:1"}},
		{name: "join_json", args: []string{"--format", "json", "join", "127.0.0.1:8946"}},
		{name: "join_none", args: []string{"join", "bad.example:1"}},
		{name: "leave", args: []string{"leave"}},
		{name: "leave_json", args: []string{"--format", "json", "leave"}},
		{name: "force_leave", args: []string{"force-leave", "n4"}},
		{name: "force_leave_prune_json", args: []string{"--format", "json", "force-leave", "--prune", "n4"}},
		{name: "force_leave_alive", args: []string{"force-leave", "n2"}},
		{name: "force_leave_unknown", args: []string{"force-leave", "n9"}},
		{name: "raft_remove_peer", args: []string{"raft", "remove-peer", "n4"}},
		{name: "raft_remove_peer_json", args: []string{"--format", "json", "raft", "remove-peer", "n4"}},
		{name: "raft_remove_peer_last_voter", args: []string{"raft", "remove-peer", "n1"}},
		{name: "raft_remove_peer_unknown", args: []string{"raft", "remove-peer", "n9"}},
		{name: "version", args: []string{"version"}},
		{name: "version_flag", args: []string{"--version"}},
		{name: "version_json", args: []string{"--format", "json", "version"}},
		{name: "bench", args: []string{"bench"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAgent(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			r := f.run(t, tt.args...)
			checkGolden(t, "out/"+tt.name, "$ dstatectl "+strings.Join(tt.args, " ")+"\n"+r.String())
			if slices.Contains(tt.args, "json") && r.stdout != "" && !json.Valid([]byte(r.stdout)) {
				t.Errorf("--format json wrote invalid JSON:\n%s", r.stdout)
			}
		})
	}
}

// TestRequests checks what each command asks of the agent: method, path,
// query and body, as the contract in pkg/agent/api.go has them.
func TestRequests(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "members", args: []string{"members"}, want: []string{"GET /v1/members"}},
		{name: "dump all", args: []string{"dump"}, want: []string{"GET /v1/states", "GET /v1/states/durable-kv", "GET /v1/states/kv"}},
		{name: "dump flags", args: []string{"dump", "--node", "n2", "--max-staleness", "1500ms", "--consistent", "kv"},
			want: []string{"GET /v1/states/kv?consistent=true&max_staleness=1.5s&node=n2"}},
		{name: "get", args: []string{"get", "--node", "n1", "--state", "durable-kv", "config/limit"},
			want: []string{"GET /v1/kv/config%2Flimit?node=n1&state=durable-kv"}},
		{name: "get escapes", args: []string{"get", "a b?c"}, want: []string{"GET /v1/kv/a%20b%3Fc?state=kv"}},
		{name: "put", args: []string{"put", "user:43", "carol smith"}, want: []string{"PUT /v1/kv/user:43?state=kv carol smith"}},
		{name: "put durable", args: []string{"put", "--state", "durable-kv", "k", "v"}, want: []string{"PUT /v1/kv/k?state=durable-kv v"}},
		{name: "del", args: []string{"del", "user:42"}, want: []string{"DELETE /v1/kv/user:42?state=kv"}},
		{name: "health", args: []string{"health", "--max-staleness", "5s"}, want: []string{"GET /v1/health?max_staleness=5s"}},
		{name: "metrics", args: []string{"metrics"}, want: []string{"GET /metrics"}},
		{name: "join", args: []string{"join", "a:1", "b:2"}, want: []string{`POST /v1/join {"addrs":["a:1","b:2"]}`}},
		{name: "leave", args: []string{"leave"}, want: []string{"POST /v1/leave"}},
		{name: "force-leave", args: []string{"force-leave", "n4"}, want: []string{`POST /v1/force-leave {"node":"n4"}`}},
		{name: "force-leave prune", args: []string{"force-leave", "--prune", "n4"}, want: []string{`POST /v1/force-leave {"node":"n4","prune":true}`}},
		{name: "raft remove-peer", args: []string{"raft", "remove-peer", "n4"}, want: []string{`POST /v1/raft/remove-peer {"id":"n4"}`}},
		{name: "raft peers", args: []string{"raft", "peers"}, want: []string{"GET /v1/raft"}},
		{name: "bootstrap alone", args: []string{"bootstrap"}, want: []string{`POST /v1/raft/bootstrap {"servers":[]}`}},
		{name: "bootstrap servers", args: []string{"bootstrap", "--server", "n1=h:1", "--server", "n2"},
			want: []string{`POST /v1/raft/bootstrap {"servers":["n1=h:1","n2"]}`}},
		{name: "keyring list", args: []string{"keyring", "list"}, want: []string{"GET /v1/keyring"}},
		{name: "keyring remove", args: []string{"keyring", "remove", fakeKeyNew}, want: []string{`POST /v1/keyring/remove {"key":"` + fakeKeyNew + `"}`}},
		{name: "version asks nothing", args: []string{"version"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAgent(t)
			r := f.run(t, tt.args...)
			if r.code != 0 {
				t.Fatalf("got exit %d, want 0; stderr: %s", r.code, r.stderr)
			}
			if got := f.seen(); !slices.Equal(got, tt.want) {
				t.Errorf("got requests %q, want %q", got, tt.want)
			}
		})
	}
}

// TestKeyWithSlash checks a key with a slash reaches the agent as one path
// segment and comes back intact.
func TestKeyWithSlash(t *testing.T) {
	f := newFakeAgent(t)
	r := f.run(t, "--format", "json", "get", "a/b")
	if r.code != 0 {
		t.Fatalf("got exit %d, want 0; stderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, `"key": "a/b"`) || !strings.Contains(r.stdout, `"value": "slash"`) {
		t.Errorf("got %s, want key a/b with value slash", r.stdout)
	}
}
