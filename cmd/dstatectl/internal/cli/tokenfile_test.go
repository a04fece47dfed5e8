package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dstate-go/dstate/internal/tokenfile"
)

// TestTokenFile checks --token-file and DSTATE_TOKEN_FILE: the file is read
// (whitespace trimmed) when no --token is set, and every way it can be
// unusable is an error naming the file that reaches no agent.
func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, perm os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), perm); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "  s3cret\n\n", 0o600)
	wrong := write("wrong", "guess\n", 0o600)
	empty := write("empty", "", 0o600)
	blank := write("blank", " \n\t\n", 0o600)
	twoLines := write("two-lines", "s3cret\nother\n", 0o600)
	huge := write("huge", strings.Repeat("x", tokenfile.MaxSize+1), 0o600)
	missing := filepath.Join(dir, "missing")
	unreadable := write("unreadable", "s3cret", 0o000)

	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		want     string // in stderr
		asked    bool   // the agent was asked
	}{
		{name: "flag", args: []string{"--token-file", good}, wantCode: 0, asked: true},
		{name: "env", env: map[string]string{"DSTATE_TOKEN_FILE": good}, wantCode: 0, asked: true},
		{name: "wrong token in file", args: []string{"--token-file", wrong}, wantCode: 1, want: "refused the token (401)", asked: true},
		{name: "token flag wins", args: []string{"--token", "s3cret", "--token-file", wrong}, wantCode: 0, asked: true},
		{name: "token env wins", env: map[string]string{"DSTATE_TOKEN": "s3cret"}, args: []string{"--token-file", wrong}, wantCode: 0, asked: true},
		{name: "token wins over a missing file", args: []string{"--token", "s3cret", "--token-file", missing}, wantCode: 0, asked: true},
		{name: "missing", args: []string{"--token-file", missing}, wantCode: 1,
			want: "dstatectl: --token-file " + missing + ": cannot read the token: no such file or directory\n"},
		{name: "missing from env", env: map[string]string{"DSTATE_TOKEN_FILE": missing}, wantCode: 1,
			want: "--token-file " + missing + ": cannot read the token"},
		{name: "empty", args: []string{"--token-file", empty}, wantCode: 1,
			want: "dstatectl: --token-file " + empty + ": the file is empty (want the agent's admin token)\n"},
		{name: "only whitespace", args: []string{"--token-file", blank}, wantCode: 1, want: "--token-file " + blank + ": the file is empty"},
		{name: "two lines", args: []string{"--token-file", twoLines}, wantCode: 1, want: "--token-file " + twoLines + ": holds more than one line"},
		{name: "huge", args: []string{"--token-file", huge}, wantCode: 1, want: "--token-file " + huge + ": larger than 64 KiB"},
		{name: "directory", args: []string{"--token-file", dir}, wantCode: 1, want: "--token-file " + dir + ": cannot read the token: is a directory"},
	}
	if os.Geteuid() != 0 { // root reads any file
		tests = append(tests, struct {
			name     string
			args     []string
			env      map[string]string
			wantCode int
			want     string
			asked    bool
		}{name: "unreadable", args: []string{"--token-file", unreadable}, wantCode: 1,
			want: "--token-file " + unreadable + ": cannot read the token: permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
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
			if asked := len(f.seen()) > 0; asked != tt.asked {
				t.Errorf("the agent was asked: %v, want %v", asked, tt.asked)
			}
			if strings.Contains(r.stderr+r.stdout, "s3cret") || strings.Contains(r.stderr+r.stdout, "guess") {
				t.Errorf("the output shows a token: %q %q", r.stdout, r.stderr)
			}
		})
	}
}

func TestReadTokenFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("\r\n  abc.DEF-123  \r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readTokenFile(p)
	if err != nil || got != "abc.DEF-123" {
		t.Errorf("got %q, %v; want %q", got, err, "abc.DEF-123")
	}
}
