package cli

import (
	"io"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"
)

// othersCommands are written (and their help tested) elsewhere.
var othersCommands = map[string]bool{"agent": true, "demo": true}

// commandPaths lists every command and subcommand as its words, e.g.
// ["raft", "peers"], in the order of the app.
func commandPaths(cmds []*ucli.Command, prefix []string) [][]string {
	var out [][]string
	for _, c := range cmds {
		if c.Name == "help" || (len(prefix) == 0 && othersCommands[c.Name]) {
			continue
		}
		p := append(append([]string(nil), prefix...), c.Name)
		out = append(out, p)
		out = append(out, commandPaths(c.Subcommands, p)...)
	}
	return out
}

func TestHelpGolden(t *testing.T) {
	t.Run("app", func(t *testing.T) {
		r := run(t, "--help")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("got exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
		}
		checkGolden(t, "help/dstatectl", r.stdout)
	})
	for _, path := range commandPaths(NewApp(io.Discard, io.Discard).Commands, nil) {
		name := strings.Join(path, "_")
		t.Run(name, func(t *testing.T) {
			r := run(t, append(path, "--help")...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("got exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
			}
			checkGolden(t, "help/"+name, r.stdout)
		})
	}
}

// TestEveryCommandDocumented checks what each command must carry: a usage
// line, a description with an example, and usage errors on bad flags.
func TestEveryCommandDocumented(t *testing.T) {
	app := NewApp(io.Discard, io.Discard)
	var walk func(cmds []*ucli.Command, prefix string)
	walk = func(cmds []*ucli.Command, prefix string) {
		for _, c := range cmds {
			name := strings.TrimSpace(prefix + " " + c.Name)
			if c.Name == "help" || othersCommands[name] {
				continue
			}
			if c.Usage == "" {
				t.Errorf("%s: no Usage", name)
			}
			if c.UsageText == "" {
				t.Errorf("%s: no UsageText", name)
			}
			if !strings.Contains(c.Description, "Example:\n   dstatectl ") && !strings.Contains(c.Description, "Example:\n   make ") {
				t.Errorf("%s: Description has no example invocation", name)
			}
			if c.OnUsageError == nil {
				t.Errorf("%s: no OnUsageError", name)
			}
			walk(c.Subcommands, name)
		}
	}
	walk(app.Commands, "")
	if !app.EnableBashCompletion {
		t.Error("shell completion is off")
	}
}

func TestShellCompletion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "commands", args: []string{"--generate-bash-completion"}, want: []string{"members", "dump", "raft", "keyring"}},
		{name: "raft", args: []string{"raft", "--generate-bash-completion"}, want: []string{"peers", "status"}},
		{name: "keyring", args: []string{"keyring", "--generate-bash-completion"}, want: []string{"list", "install", "use", "remove"}},
		{name: "dump flags", args: []string{"dump", "--generate-bash-completion"}, want: []string{"--node", "--max-staleness", "--consistent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.args...)
			if r.code != 0 {
				t.Fatalf("got exit %d, want 0", r.code)
			}
			lines := strings.Fields(r.stdout)
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("completion %q: got %q, want it to offer %s", tt.args, lines, w)
				}
			}
		})
	}
}
