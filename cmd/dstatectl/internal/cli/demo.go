package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dstate-go/dstate/cmd/dstatectl/internal/simdemo"
	"github.com/dstate-go/dstate/pkg/agent"
)

func demoCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "demo",
		Usage: "run a local 3-node cluster and show replication, a crash, a restart and a dump",
		Description: `Starts three real agent processes on free loopback ports in a temporary directory,
shows them discover each other, writes on one node and shows the value on all, kills one
node (SIGKILL), shows the others mark it failed, restarts it from its data dir, shows its
durable state restored and the views converged again, dumps the cluster and cleans up
(also on Ctrl-C). With --simulated it runs the deterministic in-process simulation instead.

Example:
   dstatectl demo
   dstatectl demo --simulated --seed 7`,
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "simulated", Usage: "run a simulated 5-node cluster in one process instead of real agents"},
			&ucli.Uint64Flag{Name: "seed", Value: 1, Usage: "seed of the simulated network (with --simulated)"},
			&ucli.BoolFlag{Name: "keep", Usage: "keep the temporary directory with the agents' data and logs"},
		},
		Action: func(c *ucli.Context) error {
			if c.Bool("simulated") {
				return simdemo.Run(c.App.Writer, c.Uint64("seed"))
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, c.App.Writer, c.Bool("keep"))
		},
	}
}

// demoNode is one agent process of the demo.
type demoNode struct {
	id      string
	dir     string
	ports   [4]int // serf, transport, raft, http
	cmd     *exec.Cmd
	exited  chan struct{}
	cl      *client
	logFile *os.File
}

func (n *demoNode) addr(i int) string { return fmt.Sprintf("127.0.0.1:%d", n.ports[i]) }

type demo struct {
	w     io.Writer
	exe   string
	root  string
	nodes []*demoNode
	step  int
}

func runDemo(ctx context.Context, w io.Writer, keep bool) (err error) {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("demo: cannot find the dstatectl binary: %w", err)
	}
	root, err := os.MkdirTemp("", "dstate-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d := &demo{w: w, exe: exe, root: root}
	defer func() {
		d.stopAll()
		if keep || err != nil {
			fmt.Fprintf(w, "\nagent data and logs kept in %s\n", root)
		} else {
			_ = os.RemoveAll(root)
		}
	}()
	for i := 1; i <= 3; i++ {
		n := &demoNode{id: fmt.Sprintf("n%d", i), dir: filepath.Join(root, fmt.Sprintf("n%d", i))}
		for j := range n.ports {
			if n.ports[j], err = demoFreePort(); err != nil {
				return err
			}
		}
		base := "http://" + n.addr(3)
		n.cl = &client{base: base, timeout: 5 * time.Second, hc: &http.Client{Timeout: 5 * time.Second}}
		d.nodes = append(d.nodes, n)
	}
	return d.run(ctx)
}

func (d *demo) run(ctx context.Context) error {
	d.title("Starting three agents (each a Raft server, bootstrap-expect 3) on loopback")
	for _, n := range d.nodes {
		if err := d.start(n); err != nil {
			return err
		}
	}
	if err := d.wait(ctx, "every agent sees three alive members", 30*time.Second, func() bool {
		return d.allSee(ctx, func(ms []agent.Member) bool { return demoCount(ms, "alive") == 3 })
	}); err != nil {
		return err
	}
	if err := d.wait(ctx, "a Raft leader is elected", 30*time.Second, func() bool { return d.leader(ctx) != "" }); err != nil {
		return err
	}
	if err := d.wait(ctx, "every agent has loaded durable-kv from the Raft log", 30*time.Second, func() bool {
		return d.allRegistered(ctx, agent.DurableKVState)
	}); err != nil {
		return err
	}
	d.members(ctx, d.nodes[0])
	fmt.Fprintf(d.w, "Raft leader: %s\n", d.leader(ctx))

	d.title("Writing greeting=hello on n1 (kv, Local durability) and color=blue on each node (durable-kv, Raft)")
	if err := d.put(ctx, d.nodes[0], agent.KVState, "greeting", "hello"); err != nil {
		return err
	}
	for _, n := range d.nodes {
		if err := d.put(ctx, n, agent.DurableKVState, "color", "blue-"+n.id); err != nil {
			return err
		}
	}
	if err := d.wait(ctx, "every node holds n1's greeting", 20*time.Second, func() bool {
		return d.everyoneHas(ctx, agent.KVState, "n1", "greeting", "hello")
	}); err != nil {
		return err
	}
	d.views(ctx, agent.KVState, "greeting")

	victim := d.nodes[2]
	d.title("Killing n3 with SIGKILL")
	_ = victim.cmd.Process.Signal(syscall.SIGKILL)
	<-victim.exited
	if err := d.wait(ctx, "n1 and n2 mark n3 failed", 30*time.Second, func() bool {
		for _, n := range d.nodes[:2] {
			var ms []agent.Member
			if n.cl.getJSON(ctx, "/v1/members", nil, &ms) != nil || demoMemberStatus(ms, "n3") != "failed" {
				return false
			}
		}
		return true
	}); err != nil {
		return err
	}
	d.members(ctx, d.nodes[0])
	if err := d.put(ctx, d.nodes[0], agent.KVState, "greeting", "hello again"); err != nil {
		return err
	}
	fmt.Fprintln(d.w, "n1 changed greeting to \"hello again\" while n3 is down.")

	d.title("Restarting n3 from its data dir")
	if err := d.start(victim); err != nil {
		return err
	}
	if err := d.wait(ctx, "n3 is back, its durable state restored and its views converged", 40*time.Second, func() bool {
		v, err := d.get(ctx, victim, agent.DurableKVState, "n3", "color")
		if err != nil || v.Value != "blue-n3" || !d.everyoneHas(ctx, agent.KVState, "n1", "greeting", "hello again") {
			return false
		}
		for _, owner := range d.nodes {
			if !d.everyoneHas(ctx, agent.DurableKVState, owner.id, "color", "blue-"+owner.id) {
				return false
			}
		}
		return d.allSee(ctx, func(ms []agent.Member) bool { return demoCount(ms, "alive") == 3 })
	}); err != nil {
		return err
	}
	d.members(ctx, d.nodes[0])
	d.views(ctx, agent.DurableKVState, "color")

	d.title("Dump of the kv state as n2 holds it")
	var dump agent.StateDump
	if err := d.nodes[1].cl.getJSON(ctx, "/v1/states/"+agent.KVState, nil, &dump); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(d.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tGENERATION\tVALUE")
	for _, v := range dump.Views {
		val, _ := json.Marshal(v.Value)
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Node, v.Generation, val)
	}
	_ = tw.Flush()
	d.title("Done: stopping the agents")
	return nil
}

func (d *demo) title(s string) {
	d.step++
	fmt.Fprintf(d.w, "\n== %d. %s\n", d.step, s)
}

func (d *demo) start(n *demoNode) error {
	f, err := os.OpenFile(filepath.Join(d.root, n.id+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	args := []string{"agent", "--fast", "--node-id", n.id, "--data-dir", n.dir, "--cluster", "demo",
		"--serf-addr", n.addr(0), "--transport-addr", n.addr(1), "--raft-addr", n.addr(2), "--http-addr", n.addr(3),
		"--bootstrap-expect", "3", "--load-interval", "500ms"}
	if n != d.nodes[0] {
		args = append(args, "--join", d.nodes[0].addr(0))
	} else {
		args = append(args, "--join", d.nodes[1].addr(0))
	}
	cmd := exec.Command(d.exe, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("demo: start %s: %w", n.id, err)
	}
	n.cmd, n.logFile, n.exited = cmd, f, make(chan struct{})
	go func() { _ = cmd.Wait(); close(n.exited) }()
	fmt.Fprintf(d.w, "  %s  pid %-7d gossip %s  admin http://%s\n", n.id, cmd.Process.Pid, n.addr(0), n.addr(3))
	return nil
}

// stopAll stops every running agent: SIGTERM, then SIGKILL after a grace.
func (d *demo) stopAll() {
	for _, n := range d.nodes {
		if n.cmd != nil && !demoExited(n) {
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range d.nodes {
		if n.cmd == nil {
			continue
		}
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
		_ = n.logFile.Close()
	}
}

func demoExited(n *demoNode) bool {
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// wait polls cond until it holds, printing progress, up to timeout.
func (d *demo) wait(ctx context.Context, what string, timeout time.Duration, cond func() bool) error {
	fmt.Fprintf(d.w, "waiting until %s ", what)
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	dots := 0
	for {
		if cond() {
			fmt.Fprintf(d.w, " ok (%s)\n", time.Since(start).Round(10*time.Millisecond))
			return nil
		}
		if time.Since(start) > timeout {
			fmt.Fprintln(d.w, " timed out")
			return fmt.Errorf("demo: %s did not happen within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(d.w, " interrupted")
			return errors.New("demo: interrupted")
		case <-tick.C:
			if dots++; dots%5 == 0 {
				fmt.Fprint(d.w, ".")
			}
		}
	}
}

func (d *demo) allSee(ctx context.Context, ok func([]agent.Member) bool) bool {
	for _, n := range d.nodes {
		var ms []agent.Member
		if n.cl.getJSON(ctx, "/v1/members", nil, &ms) != nil || !ok(ms) {
			return false
		}
	}
	return true
}

func demoCount(ms []agent.Member, status string) int {
	c := 0
	for _, m := range ms {
		if m.Status == status {
			c++
		}
	}
	return c
}

func demoMemberStatus(ms []agent.Member, name string) string {
	for _, m := range ms {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

// allRegistered reports whether every agent serves state: a Raft-durable
// state is registered only once a leader is known and the node has read
// its state back, a moment after the election.
func (d *demo) allRegistered(ctx context.Context, state string) bool {
	for _, n := range d.nodes {
		var states []agent.StateInfo
		if n.cl.getJSON(ctx, "/v1/states", nil, &states) != nil ||
			!slices.ContainsFunc(states, func(s agent.StateInfo) bool { return s.Name == state }) {
			return false
		}
	}
	return true
}

func (d *demo) leader(ctx context.Context) string {
	var st agent.RaftStatus
	if d.nodes[0].cl.getJSON(ctx, "/v1/raft", nil, &st) != nil {
		return ""
	}
	return st.Leader
}

func (d *demo) members(ctx context.Context, n *demoNode) {
	var ms []agent.Member
	if err := n.cl.getJSON(ctx, "/v1/members", nil, &ms); err != nil {
		fmt.Fprintf(d.w, "members: %v\n", err)
		return
	}
	fmt.Fprintf(d.w, "Members as %s sees them:\n", n.id)
	tw := tabwriter.NewWriter(d.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tSTATUS\tGOSSIP\tRAFT")
	for _, m := range ms {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", m.Name, m.Status, m.Addr, m.Tags["raft"])
	}
	_ = tw.Flush()
}

func (d *demo) put(ctx context.Context, n *demoNode, state, key, value string) error {
	q := url.Values{"state": {state}}
	_, _, err := n.cl.do(ctx, http.MethodPut, "/v1/kv/"+escape(key), q, []byte(value), "application/octet-stream")
	if err != nil {
		return fmt.Errorf("demo: put %s=%s on %s (%s): %w", key, value, n.id, state, err)
	}
	return nil
}

func (d *demo) get(ctx context.Context, n *demoNode, state, owner, key string) (agent.KVValue, error) {
	var v agent.KVValue
	err := n.cl.getJSON(ctx, "/v1/kv/"+escape(key), url.Values{"state": {state}, "node": {owner}}, &v)
	return v, err
}

func (d *demo) everyoneHas(ctx context.Context, state, owner, key, value string) bool {
	for _, n := range d.nodes {
		if demoExited(n) {
			return false
		}
		v, err := d.get(ctx, n, state, owner, key)
		if err != nil || v.Value != value {
			return false
		}
	}
	return true
}

// views prints, for each node, what it holds of key in every node's map.
func (d *demo) views(ctx context.Context, state, key string) {
	fmt.Fprintf(d.w, "What each node holds of %q in %s (rows: holder, columns: owner):\n", key, state)
	tw := tabwriter.NewWriter(d.w, 0, 4, 2, ' ', 0)
	head := []string{"  HOLDER"}
	for _, o := range d.nodes {
		head = append(head, strings.ToUpper(o.id))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, n := range d.nodes {
		row := []string{"  " + n.id}
		for _, o := range d.nodes {
			v, err := d.get(ctx, n, state, o.id, key)
			switch {
			case err != nil:
				row = append(row, "-")
			case !v.Found:
				row = append(row, "(none) "+v.Generation)
			default:
				row = append(row, fmt.Sprintf("%s %s", v.Value, v.Generation))
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

// freePort returns a loopback TCP port that was free a moment ago.
func demoFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("demo: no free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
