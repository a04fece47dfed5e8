package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// watchProc is a running `dstatectl watch` whose JSON lines are collected.
type watchProc struct {
	cmd     *exec.Cmd
	changes chan agent.StateChange
	mu      sync.Mutex
	stderr  strings.Builder
}

func startWatchCLI(t *testing.T, nd *node, args ...string) *watchProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, dstatectl, append([]string{"--addr", nd.httpAddr(), "--format", "json", "watch"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &watchProc{cmd: cmd, changes: make(chan agent.StateChange, 1024)}
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(w.changes)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ch agent.StateChange
			if err := json.Unmarshal(sc.Bytes(), &ch); err != nil {
				t.Errorf("dstatectl watch printed a line that is not a JSON change: %q: %v", sc.Text(), err)
				continue
			}
			w.changes <- ch
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			w.mu.Lock()
			w.stderr.WriteString(sc.Text() + "\n")
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); _ = cmd.Wait() })
	return w
}

// until returns the first change for which ok holds, failing after timeout.
func (w *watchProc) until(t *testing.T, what string, timeout time.Duration, ok func(agent.StateChange) bool) agent.StateChange {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ch, open := <-w.changes:
			if !open {
				w.mu.Lock()
				defer w.mu.Unlock()
				t.Fatalf("dstatectl watch exited before %s: %s", what, w.stderr.String())
			}
			if ok(ch) {
				return ch
			}
		case <-deadline:
			t.Fatalf("dstatectl watch: no %s within %s", what, timeout)
		}
	}
}

// TestWatchCLI: `dstatectl watch kv` on n1 lists the views as they stand,
// prints a write on n2 as it replicates, reports n3 failed when it is
// killed, and when n1 itself is killed and restarted it reconnects and
// resumes: the next write is printed, nothing seen before is repeated as
// new.
func TestWatchCLI(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.waitReady(c.nodes, 30*time.Second)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	c.mustPut(n2, agent.KVState, "before", "1")
	c.waitValue([]*node{n1}, agent.KVState, n2, "before", "1", 30*time.Second)

	w := startWatchCLI(t, n1, agent.KVState)
	initial := map[string]bool{}
	for len(initial) < 3 {
		ch := w.until(t, "the views as they stand", 20*time.Second, func(ch agent.StateChange) bool { return ch.Initial })
		initial[ch.Node] = true
	}

	at := time.Now()
	c.mustPut(n2, agent.KVState, "login", "alice")
	ch := w.until(t, "n2's write", 20*time.Second, func(ch agent.StateChange) bool {
		m, _ := ch.Value.(map[string]any)
		return ch.Node == n2.id && ch.Kind == "updated" && m["login"] == "alice"
	})
	measured(t, "a kv write on n2 → printed by dstatectl watch on n1", time.Since(at))
	if ch.Initial || ch.Generation == "" {
		t.Fatalf("the change is marked initial or has no generation: %+v", ch)
	}

	c.kill(n3)
	w.until(t, "n3 reported failed", 60*time.Second, func(ch agent.StateChange) bool { return ch.Node == n3.id && ch.Kind == "failed" })

	// The watched agent restarts: the watch resumes.
	c.kill(n1)
	c.start(n1)
	c.mustPut(n2, agent.KVState, "login", "bob")
	w.until(t, "n2's write after n1 restarted", 60*time.Second, func(ch agent.StateChange) bool {
		m, _ := ch.Value.(map[string]any)
		if ch.Initial {
			t.Errorf("after reconnecting, dstatectl watch listed the views again: %+v", ch)
		}
		return ch.Node == n2.id && m["login"] == "bob"
	})
	eventually(t, "dstatectl watch says it reconnected", 10*time.Second, func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return strings.Contains(w.stderr.String(), "reconnected to"), w.stderr.String()
	})
}
