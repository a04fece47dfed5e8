package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	ucli "github.com/urfave/cli/v2"

	"github.com/dstate-go/dstate/pkg/agent"
)

func TestReorderArgs(t *testing.T) {
	app := NewApp(io.Discard, io.Discard)
	for _, tc := range []struct{ in, want string }{
		{"get greeting --node n1", "get --node n1 greeting"},
		{"--addr a:1 get greeting --node=n1 --raw", "--addr a:1 get --node=n1 --raw greeting"},
		{"put --state durable-kv k v", "put --state durable-kv k v"},
		{"put k - --state durable-kv", "put --state durable-kv k -"},
		{"get -- -odd --node n1", "get -- -odd --node n1"},
		{"get k -- -odd", "get k -- -odd"},
		{"raft remove-peer n4 --help", "raft remove-peer --help n4"},
		{"members --status failed --detailed", "members --status failed --detailed"},
		{"get k --generate-bash-completion", "get k --generate-bash-completion"},
		{"nosuch k --x", "nosuch k --x"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := reorderArgs(app, append([]string{"dstatectl"}, strings.Fields(tc.in)...))
			require.Equal(t, strings.Fields("dstatectl "+tc.want), got)
		})
	}
}

// TestFeaturesGolden runs the commands' newer options against the fake
// agent and compares with testdata/out/*.golden.
func TestFeaturesGolden(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		args        []string
	}{
		{name: "get_raw", args: []string{"get", "user:42", "--raw"}},
		{name: "get_raw_missing", args: []string{"get", "--raw", "nobody"}},
		{name: "get_raw_json", args: []string{"--format", "json", "get", "--raw", "user:42"}},
		{name: "get_options_after", args: []string{"get", "user:7", "--node", "n2"}},
		{name: "put_stdin", args: []string{"put", "motd", "-"}, stdin: "hello\nworld\n"},
		{name: "members_status", args: []string{"members", "--status", "failed,left"}},
		{name: "members_status_bad", args: []string{"members", "--status", "dead"}},
		{name: "members_detailed", args: []string{"members", "--detailed"}},
		{name: "completion_bash", args: []string{"completion", "bash"}},
		{name: "completion_zsh", args: []string{"completion", "zsh"}},
		{name: "completion_fish", args: []string{"completion", "fish"}},
		{name: "completion_bad", args: []string{"completion", "tcsh"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAgent(t)
			var out, errOut bytes.Buffer
			code := runWithInput(append([]string{"dstatectl", "--addr", f.srv.URL}, tc.args...), strings.NewReader(tc.stdin), &out, &errOut)
			r := result{code: code, stdout: strings.ReplaceAll(out.String(), f.srv.URL, agentAddr), stderr: strings.ReplaceAll(errOut.String(), f.srv.URL, agentAddr)}
			checkGolden(t, "out/"+tc.name, "$ dstatectl "+strings.Join(tc.args, " ")+"\n"+r.String())
			if tc.name == "put_stdin" {
				require.Contains(t, f.seen(), "PUT /v1/kv/motd?state=kv hello\nworld\n")
			}
		})
	}
}

func TestDevMode(t *testing.T) {
	var got agent.Config
	var dirDuringRun string
	cmd := newAgentCommand(func(_ context.Context, c agent.Config, _ agent.TestHooks, _ io.Writer) error {
		got = c
		st, err := os.Stat(c.DataDir)
		require.NoError(t, err)
		require.True(t, st.IsDir())
		dirDuringRun = c.DataDir
		return nil
	})
	prepareCommand(cmd)
	var errOut bytes.Buffer
	app := &ucli.App{Name: "dstatectl", Writer: io.Discard, ErrWriter: &errOut, Commands: []*ucli.Command{cmd}}
	require.NoError(t, app.Run([]string{"dstatectl", "agent", "--dev", "--http-addr", "127.0.0.1:7399"}))
	require.Equal(t, "dev", got.NodeID)
	require.True(t, got.Fast)
	require.Equal(t, 1, got.BootstrapExpect)
	require.True(t, got.Server)
	require.Equal(t, "127.0.0.1:7399", got.HTTPAddr, "other flags still apply")
	require.Equal(t, agent.DefaultConfig().SerfAddr, got.SerfAddr)
	_, err := os.Stat(dirDuringRun)
	require.True(t, os.IsNotExist(err), "the temporary data dir is removed at exit: %v", err)
	require.Contains(t, errOut.String(), "NOT FOR PRODUCTION")
	require.Contains(t, errOut.String(), dirDuringRun)
}

func TestHelpShowsTheRealDefaults(t *testing.T) {
	r := run(t, "agent", "--help")
	require.Equal(t, 0, r.code)
	for _, want := range []string{
		"be a Raft server (--server=false for a client) (default: true)",
		"refresh interval of the built-in load state (default: 1s)",
		"bad input of one kind (default: 1m) [",
		"(each node's own map, saved to its disk)",
	} {
		if want == "(each node's own map, saved to its disk)" {
			r = run(t, "get", "--help")
		}
		require.Contains(t, r.stdout, want)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		require.False(t, strings.Count(line, "(default") > 1, "two defaults on one line: %s", line)
	}
	require.False(t, slices.ContainsFunc(strings.Split(run(t, "agent", "--help").stdout, "\n"), func(l string) bool {
		return strings.Count(l, "(default") > 1
	}))
}
