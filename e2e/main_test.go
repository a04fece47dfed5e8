package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// dstatectl is the binary under test, built once by TestMain.
var dstatectl string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "dstate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	dstatectl = filepath.Join(dir, "dstatectl")
	start := time.Now()
	args := []string{"build", "-o", dstatectl}
	if raceAgents() {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/dstatectl")...)
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building dstatectl:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s (%s) in %s\n", dstatectl, strings.Join(args[3:], " "), time.Since(start).Round(time.Millisecond))
	if !raceAgents() {
		return m.Run()
	}
	// Every agent and CLI process started from here on writes its race
	// reports to race.<pid> in dir (the processes are killed, so their
	// exit status, 66 after a race, is never seen); any report fails the
	// run.
	racePrefix := filepath.Join(dir, "race")
	if err := os.Setenv("GORACE", "log_path="+racePrefix); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: GORACE:", err)
		return 1
	}
	code := m.Run()
	reports, _ := filepath.Glob(racePrefix + ".*")
	for _, r := range reports {
		b, _ := os.ReadFile(r)
		fmt.Fprintf(os.Stderr, "e2e: the race detector reported in an agent (%s):\n%s\n", filepath.Base(r), b)
	}
	if len(reports) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %d agent processes reported data races\n", len(reports))
		return 1
	}
	fmt.Fprintln(os.Stderr, "e2e: no agent process reported a data race")
	return code
}

// raceAgents reports E2E_RACE: the agents are built with -race (make
// e2e-race) and any race they report fails the run.
func raceAgents() bool { return os.Getenv("E2E_RACE") != "" }

// nemesisDuration is E2E_NEMESIS, 10 s by default.
func nemesisDuration(t testing.TB) time.Duration {
	s := os.Getenv("E2E_NEMESIS")
	if s == "" {
		return 10 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("E2E_NEMESIS=%q is not a positive duration", s)
	}
	return d
}

// full reports E2E_FULL: the longer variants (make e2e).
func full() bool { return os.Getenv("E2E_FULL") != "" }

// seedFor returns E2E_SEED or a fresh time-based seed, and logs it so a
// failing schedule can be replayed.
func seedFor(t testing.TB) int64 {
	t.Helper()
	seed := time.Now().UnixNano()
	if s := os.Getenv("E2E_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("E2E_SEED=%q is not an integer", s)
		}
		seed = v
	}
	t.Logf("seed %d (replay with E2E_SEED=%d)", seed, seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d: replay with E2E_SEED=%d go test -count=1 -run '^%s$' ./e2e/", seed, seed, t.Name())
		}
	})
	return seed
}

var resultsMu sync.Mutex

// measured logs a measured duration and appends it to E2E_RESULTS.
func measured(t testing.TB, what string, d time.Duration) {
	t.Helper()
	t.Logf("MEASURED %s: %s", what, d.Round(time.Millisecond))
	appendResult(t, map[string]any{"test": t.Name(), "what": what, "ms": d.Milliseconds()})
}

// appendResult appends one figure as a JSON line to the E2E_RESULTS file,
// when one is set.
func appendResult(t testing.TB, rec map[string]any) {
	t.Helper()
	path := os.Getenv("E2E_RESULTS")
	if path == "" {
		return
	}
	resultsMu.Lock()
	defer resultsMu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Logf("E2E_RESULTS: %v", err)
		return
	}
	defer f.Close()
	b, _ := json.Marshal(rec)
	fmt.Fprintln(f, string(b))
}
