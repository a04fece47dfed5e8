package cli

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestMain runs the tests without the environment variables that would
// change the global flags' values.
func TestMain(m *testing.M) {
	for _, k := range []string{"DSTATE_ADDR", "DSTATE_TOKEN", "DSTATE_ADMIN_TOKEN", "DSTATE_TOKEN_FILE"} {
		os.Unsetenv(k)
	}
	os.Exit(m.Run())
}

// result is the outcome of one in-process dstatectl run.
type result struct {
	code           int
	stdout, stderr string
}

// String renders a run for a golden file.
func (r result) String() string {
	return fmt.Sprintf("exit status %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// run runs dstatectl with args in-process.
func run(t testing.TB, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(append([]string{"dstatectl"}, args...), &stdout, &stderr)
	t.Logf("dstatectl %s → exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// agentAddr is how the fake agent's random URL appears in golden files.
const agentAddr = "http://AGENT"

// run runs dstatectl against the fake agent: --addr (and --token, when set
// by the caller in args) go first; the agent's URL reads as http://AGENT.
func (f *fakeAgent) run(t testing.TB, args ...string) result {
	t.Helper()
	r := run(t, append([]string{"--addr", f.srv.URL}, args...)...)
	r.stdout = strings.ReplaceAll(r.stdout, f.srv.URL, agentAddr)
	r.stderr = strings.ReplaceAll(r.stderr, f.srv.URL, agentAddr)
	return r
}

// checkGolden compares got with testdata/name.golden, or rewrites the file
// under -update.
func checkGolden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", filepath.FromSlash(name)+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/dstatectl/internal/cli -run %s -update to create it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (rerun with -update and review the diff)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
