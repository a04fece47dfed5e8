package cli

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestUsageErrors checks that every way of calling a command wrongly exits
// with status 2, names what is wrong, and asks the agent nothing.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{name: "unknown global flag", args: []string{"--bogus", "members"}, want: "flag provided but not defined: -bogus"},
		{name: "unknown command flag", args: []string{"members", "--bogus"}, want: "members: flag provided but not defined: -bogus"},
		{name: "unknown subcommand flag", args: []string{"raft", "peers", "--bogus"}, want: "raft peers: flag provided but not defined: -bogus"},
		{name: "global flag after command", args: []string{"members", "--format", "json"}, want: "--format is a global option"},
		{name: "bad format", args: []string{"--format", "xml", "members"}, want: `--format: unknown format "xml" (want table or json)`},
		{name: "bad format without command", args: []string{"--format", "yaml"}, want: `unknown format "yaml"`},
		{name: "bad format version", args: []string{"--format", "csv", "version"}, want: `unknown format "csv"`},
		{name: "bad duration", args: []string{"dump", "--max-staleness", "soon", "kv"}, want: "dump: invalid value \"soon\" for flag -max-staleness"},
		{name: "negative staleness", args: []string{"health", "--max-staleness", "-1s"}, want: "--max-staleness: must not be negative"},
		{name: "bad timeout", args: []string{"--timeout", "0s", "members"}, want: "--timeout: must be positive"},
		{name: "bad addr scheme", args: []string{"--addr", "ftp://h:1", "members"}, want: `--addr: scheme "ftp" not supported`},
		{name: "unknown command", args: []string{"membrs"}, want: `unknown command "membrs"`},
		{name: "help for unknown command", args: []string{"help", "membrs"}, want: "No help topic for 'membrs'"},
		{name: "raft without subcommand", args: []string{"raft"}, want: "raft: missing command (want one of: peers, status, remove-peer)"},
		{name: "raft unknown subcommand", args: []string{"raft", "leader"}, want: `raft: unknown command "leader"`},
		{name: "keyring without subcommand", args: []string{"keyring"}, want: "keyring: missing command (want one of: list, install, use, remove)"},
		{name: "members with argument", args: []string{"members", "n1"}, want: `members: takes no arguments, got ["n1"]`},
		{name: "leave with argument", args: []string{"leave", "now"}, want: "leave: takes no arguments"},
		{name: "health with argument", args: []string{"health", "kv"}, want: "health: takes no arguments"},
		{name: "metrics with argument", args: []string{"metrics", "x"}, want: "metrics: takes no arguments"},
		{name: "version with argument", args: []string{"version", "x"}, want: "version: takes no arguments"},
		{name: "raft peers with argument", args: []string{"raft", "peers", "n1"}, want: "raft peers: takes no arguments"},
		{name: "join without seeds", args: []string{"join"}, want: "join: expected at least one seed <addr>, got 0 arguments"},
		{name: "join empty seed", args: []string{"join", ""}, want: "join: empty seed address"},
		{name: "dump two states", args: []string{"dump", "kv", "durable-kv"}, want: `dump: expected at most one [state], got 2 arguments`},
		{name: "get without key", args: []string{"get"}, want: "get: expected one <key>, got 0 arguments"},
		{name: "get two keys", args: []string{"get", "a", "b"}, want: "get: expected one <key>, got 2 arguments"},
		{name: "get option after --", args: []string{"get", "a", "--", "--node", "n2"}, want: `get: expected one <key>, got 4 arguments: ["a" "--" "--node" "n2"]; after --, options are read as arguments`},
		{name: "get global option after the command", args: []string{"get", "a", "--addr", "x:1"}, want: "--addr is a global option: put it before the command"},
		{name: "get empty key", args: []string{"get", ""}, want: "get: the <key> must not be empty"},
		{name: "get empty state", args: []string{"get", "--state", "", "a"}, want: "--state: must not be empty"},
		{name: "put without value", args: []string{"put", "k"}, want: "put: expected <key> <value>, got 1 argument"},
		{name: "put three args", args: []string{"put", "k", "v", "w"}, want: "put: expected <key> <value>, got 3 arguments"},
		{name: "del without key", args: []string{"del"}, want: "del: expected one <key>, got 0 arguments"},
		{name: "bootstrap argument", args: []string{"bootstrap", "n1"}, want: "bootstrap: takes no arguments"},
		{name: "bootstrap empty id", args: []string{"bootstrap", "--server", "=h:1"}, want: "missing the server ID"},
		{name: "bootstrap empty addr", args: []string{"bootstrap", "--server", "n1="}, want: "missing the address"},
		{name: "bootstrap duplicate", args: []string{"bootstrap", "--server", "n1", "--server", "n1=h:1"}, want: "server n1 is listed twice"},
		{name: "keyring install without key", args: []string{"keyring", "install"}, want: "keyring install: expected one <key>, got 0 arguments"},
		{name: "keyring use not base64", args: []string{"keyring", "use", "not-a-key!"}, want: "keyring use: <key> is not base64"},
		{name: "keyring remove short key", args: []string{"keyring", "remove", "c2hvcnQ="}, want: "keyring remove: <key> decodes to 5 bytes, want 16, 24 or 32"},
		{name: "keyring list argument", args: []string{"keyring", "list", "x"}, want: "keyring list: takes no arguments"},
		{name: "bench gogc not a number", args: []string{"bench", "throughput", "--gogc", "lots"}, want: `bench: --gogc must be a percentage of at least 1 or off, got "lots"`},
		{name: "bench gogc zero", args: []string{"bench", "feed", "--gogc", "0"}, want: `--gogc must be a percentage of at least 1 or off, got "0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAgent(t)
			r := f.run(t, tt.args...)
			if r.code != 2 {
				t.Errorf("got exit %d, want 2", r.code)
			}
			if !strings.HasPrefix(r.stderr, "dstatectl: ") || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("got stderr %q, want it to start with \"dstatectl: \" and contain %q", r.stderr, tt.want)
			}
			if got := f.seen(); len(got) != 0 {
				t.Errorf("a usage error reached the agent: %q", got)
			}
		})
	}
}

// unreachableURL returns the URL of a server that has been closed.
func unreachableURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close()
	return u
}

func TestUnreachableAgent(t *testing.T) {
	u := unreachableURL(t)
	for _, args := range [][]string{{"members"}, {"health"}, {"--format", "json", "dump", "kv"}, {"put", "k", "v"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := run(t, append([]string{"--addr", u}, args...)...)
			if r.code != 1 {
				t.Errorf("got exit %d, want 1", r.code)
			}
			want := "dstatectl: cannot reach the agent at " + u + ": is `dstatectl agent` running?"
			if !strings.HasPrefix(r.stderr, want) {
				t.Errorf("got stderr %q, want it to start with %q", r.stderr, want)
			}
			if r.stdout != "" {
				t.Errorf("got stdout %q, want nothing", r.stdout)
			}
		})
	}
}

func TestToken(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      string
		wantCode int
		want     string // in stderr
	}{
		{name: "right token", args: []string{"--token", "s3cret"}, wantCode: 0},
		{name: "right token from env", env: "s3cret", wantCode: 0},
		{name: "wrong token", args: []string{"--token", "guess"}, wantCode: 1,
			want: "dstatectl: agent at http://AGENT refused the token (401): invalid or missing token\n"},
		{name: "flag beats env", args: []string{"--token", "guess"}, env: "s3cret", wantCode: 1, want: "refused the token (401)"},
		{name: "no token", wantCode: 1,
			want: "dstatectl: agent at http://AGENT requires a token (401): invalid or missing token; pass --token or --token-file, or set DSTATE_TOKEN\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("DSTATE_TOKEN", tt.env)
			}
			f := newFakeAgent(t)
			f.token = "s3cret"
			r := f.run(t, append(tt.args, "members")...)
			if r.code != tt.wantCode {
				t.Errorf("got exit %d, want %d", r.code, tt.wantCode)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("got stderr %q, want it to contain %q", r.stderr, tt.want)
			}
			if strings.Contains(r.stderr+r.stdout, "guess") || strings.Contains(r.stderr+r.stdout, "s3cret") {
				t.Errorf("the output shows a token: %q %q", r.stdout, r.stderr)
			}
		})
	}
}

// TestAgentTokenEnv checks dstatectl takes the token from the agent's own
// variable when DSTATE_TOKEN is not set.
func TestAgentTokenEnv(t *testing.T) {
	t.Setenv("DSTATE_ADMIN_TOKEN", "s3cret")
	f := newFakeAgent(t)
	f.token = "s3cret"
	if r := f.run(t, "members"); r.code != 0 {
		t.Errorf("got exit %d, want 0; stderr %s", r.code, r.stderr)
	}
}

func TestAddrFromEnv(t *testing.T) {
	f := newFakeAgent(t)
	t.Setenv("DSTATE_ADDR", strings.TrimPrefix(f.srv.URL, "http://"))
	r := run(t, "members")
	if r.code != 0 {
		t.Fatalf("got exit %d, want 0; stderr %s", r.code, r.stderr)
	}
	if got := f.seen(); len(got) != 1 {
		t.Errorf("got requests %q, want one", got)
	}
}

func TestHealthExitCodes(t *testing.T) {
	tests := []struct {
		status   string
		format   string
		wantCode int
	}{
		{status: "healthy", format: "table", wantCode: 0},
		{status: "healthy", format: "json", wantCode: 0},
		{status: "degraded", format: "table", wantCode: 3},
		{status: "degraded", format: "json", wantCode: 3},
		{status: "unhealthy", format: "table", wantCode: 1},
		{status: "unhealthy", format: "json", wantCode: 1},
		{status: "", format: "table", wantCode: 1},
	}
	for _, tt := range tests {
		t.Run(tt.status+"_"+tt.format, func(t *testing.T) {
			f := newFakeAgent(t)
			f.health = tt.status
			r := f.run(t, "--format", tt.format, "health")
			if r.code != tt.wantCode {
				t.Errorf("got exit %d, want %d", r.code, tt.wantCode)
			}
			if r.stdout == "" {
				t.Error("got no report on stdout")
			}
			if tt.wantCode != 0 && !strings.Contains(r.stderr, "health: node n1 is ") {
				t.Errorf("got stderr %q, want it to say the node's health", r.stderr)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		r := run(t, "--addr", unreachableURL(t), "health")
		if r.code != 1 {
			t.Errorf("got exit %d, want 1", r.code)
		}
	})
}

// testClient returns a client of the fake agent with the given timeout.
func testClient(f *fakeAgent, timeout time.Duration) *client {
	return &client{base: f.srv.URL, timeout: timeout, hc: &http.Client{Timeout: timeout}}
}

func TestClientErrors(t *testing.T) {
	f := newFakeAgent(t)

	t.Run("server error", func(t *testing.T) {
		var v any
		err := testClient(f, time.Second).getJSON(context.Background(), "/v1/broken", nil, &v)
		var ae *agentError
		if !errors.As(err, &ae) {
			t.Fatalf("got %v, want an *agentError", err)
		}
		if ae.Status != http.StatusInternalServerError || ae.Message != "state kv: engine stopped" {
			t.Errorf("got status %d message %q, want 500 and the APIError's message", ae.Status, ae.Message)
		}
	})

	t.Run("not json", func(t *testing.T) {
		var v []int
		err := testClient(f, time.Second).getJSON(context.Background(), "/metrics", nil, &v)
		if err == nil || !strings.Contains(err.Error(), "unreadable answer to /metrics") {
			t.Errorf("got %v, want an unreadable-answer error", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		var v any
		err := testClient(f, 20*time.Millisecond).getJSON(context.Background(), "/v1/slow", nil, &v)
		var te *timeoutError
		if !errors.As(err, &te) {
			t.Fatalf("got %v, want a *timeoutError", err)
		}
		if !strings.Contains(err.Error(), "did not answer within 20ms") {
			t.Errorf("got %q, want it to name the timeout", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		cl := &client{base: unreachableURL(t), timeout: time.Second, hc: &http.Client{Timeout: time.Second}}
		var v any
		err := cl.getJSON(context.Background(), "/v1/members", nil, &v)
		var ue *unreachableError
		if !errors.As(err, &ue) {
			t.Fatalf("got %v, want an *unreachableError", err)
		}
	})
}

func TestNormalizeAddr(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "", want: "http://127.0.0.1:7380"},
		{in: "10.0.0.5:7380", want: "http://10.0.0.5:7380"},
		{in: "localhost:1", want: "http://localhost:1"},
		{in: "http://h:1/", want: "http://h:1"},
		{in: "https://h:1/admin/", want: "https://h:1/admin"},
		{in: "[::1]:7380", want: "http://[::1]:7380"},
		{in: "ftp://h:1", wantErr: true},
		{in: "http://", wantErr: true},
		{in: "http://h:1/?x=1", wantErr: true},
		{in: "http://user:pw@h:1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeAddr(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMainWithoutArgs(t *testing.T) {
	var out, errOut strings.Builder
	if code := Main(nil, &out, &errOut); code != 0 {
		t.Errorf("got exit %d, want 0; stderr %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "USAGE:") {
		t.Errorf("got %q, want the app's help", out.String())
	}
}
