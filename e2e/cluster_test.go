package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// node is one agent process (and its restarts) of a test cluster.
type node struct {
	id      string
	dataDir string
	logPath string
	ports   [4]int // serf, transport, raft, http
	extra   []string
	// host is the address serf, the state transport and Raft bind to
	// (127.0.0.1 when empty); the admin API stays on loopback.
	host string
	// prefix runs the agent through another command (ip netns exec NS).
	prefix []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logf   *os.File
	starts int

	api *apiClient
}

func (n *node) addr(i int) string {
	if n.host == "" || i == 3 {
		return fmt.Sprintf("127.0.0.1:%d", n.ports[i])
	}
	return net.JoinHostPort(n.host, fmt.Sprint(n.ports[i]))
}

func (n *node) httpAddr() string { return n.addr(3) }

// running reports whether the node's process is alive.
func (n *node) running() bool {
	n.mu.Lock()
	ch := n.exited
	n.mu.Unlock()
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// clusterOpts shape a test cluster.
type clusterOpts struct {
	// bootstrapExpect defaults to the cluster size.
	bootstrapExpect int
	// noStart leaves starting the nodes to the test.
	noStart bool
	// extra returns extra agent flags for node i.
	extra func(i int) []string
}

// cluster is a set of agent processes on loopback, torn down when the test
// ends; on failure their logs and data are kept and reported.
type cluster struct {
	t     testing.TB
	root  string
	name  string
	nodes []*node
	opts  clusterOpts
}

// newCluster reserves ports and directories for n agents and (unless
// opts.noStart) starts them all.
func newCluster(t testing.TB, n int, opts clusterOpts) *cluster {
	t.Helper()
	root, err := os.MkdirTemp("", "dstate-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if opts.bootstrapExpect == 0 {
		opts.bootstrapExpect = n
	}
	c := &cluster{t: t, root: root, name: fmt.Sprintf("e2e-%d", time.Now().UnixNano()%1e9), opts: opts}
	for i := range n {
		nd := &node{id: fmt.Sprintf("n%d", i+1)}
		nd.dataDir = filepath.Join(root, nd.id)
		nd.logPath = filepath.Join(root, nd.id+".log")
		for j := range nd.ports {
			nd.ports[j] = freePort(t)
		}
		if opts.extra != nil {
			nd.extra = opts.extra(i)
		}
		nd.api = newAPIClient(nd.httpAddr())
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(c.teardown)
	if !opts.noStart {
		for _, nd := range c.nodes {
			c.start(nd)
		}
	}
	return c
}

// usedPorts holds every port handed out in this test binary: a port that
// was free a moment ago may be handed out again by the kernel, and two
// agents must never be given the same one.
var (
	portsMu   sync.Mutex
	usedPorts = map[int]bool{}
)

// freePort returns a loopback port that was free a moment ago (TCP and
// UDP: serf uses both) and was not handed out before. It comes from below
// the kernel's ephemeral range (ip_local_port_range), from which every
// listener on port 0 and every outgoing connection takes its port: the
// tests of other packages, running at the same time, and the agents' own
// connections would otherwise take a port between the moment it is handed
// out here and the moment the agent binds it.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	lo, hi := portRange()
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if usedPorts[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			usedPorts[port] = true
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// portRange is the range freePort draws from: the 10,000 ports below the
// ephemeral range, or 20000-30000 when the range cannot be read.
func portRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		var first, last int
		if _, err := fmt.Sscan(string(b), &first, &last); err == nil && first > 11000 {
			return first - 10000, first
		}
	}
	return 20000, 30000
}

// args returns the agent command line of nd.
func (c *cluster) args(nd *node) []string {
	args := []string{"agent", "--fast", "--test-faults", "--node-id", nd.id, "--data-dir", nd.dataDir, "--cluster", c.name,
		"--serf-addr", nd.addr(0), "--transport-addr", nd.addr(1), "--raft-addr", nd.addr(2), "--http-addr", nd.addr(3),
		"--bootstrap-expect", fmt.Sprint(c.opts.bootstrapExpect), "--load-interval", "500ms", "--log-level", "info"}
	for _, o := range c.nodes {
		if o != nd {
			args = append(args, "--join", o.addr(0))
		}
	}
	return append(args, nd.extra...)
}

// start starts nd's process (again, after a kill or leave, from its data
// dir) and waits until its admin API answers.
func (c *cluster) start(nd *node) {
	c.t.Helper()
	if nd.running() {
		c.t.Fatalf("%s is already running", nd.id)
	}
	c.launch(nd)
	c.waitServing(nd)
}

// waitServing waits until nd's admin API answers, failing the test if its
// process exits first.
func (c *cluster) waitServing(nd *node) {
	c.t.Helper()
	eventually(c.t, nd.id+" serves its admin API", 20*time.Second, func() (bool, string) {
		if !nd.running() {
			c.t.Fatalf("%s exited right after start (see %s)", nd.id, nd.logPath)
		}
		return c.serving(nd)
	})
}

// launch starts nd's process with its output appended to its log, without
// waiting for it to serve.
func (c *cluster) launch(nd *node) {
	c.t.Helper()
	c.launchArgs(nd, c.args(nd))
}

// launchArgs is launch with the agent's command line given.
func (c *cluster) launchArgs(nd *node, args []string) {
	c.t.Helper()
	f, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	nd.starts++
	fmt.Fprintf(f, "=== e2e: start #%d at %s: dstatectl %s\n", nd.starts, time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	argv := append(append(append([]string(nil), nd.prefix...), dstatectl), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		c.t.Fatalf("start %s: %v", nd.id, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(exited)
	}()
	nd.mu.Lock()
	nd.cmd, nd.exited, nd.logf = cmd, exited, f
	nd.mu.Unlock()
}

// serving reports whether nd's admin API answers, as nd.
func (c *cluster) serving(nd *node) (bool, string) {
	var h agent.Liveness
	if err := nd.api.get(context.Background(), "/v1/health/live", nil, &h); err != nil {
		return false, err.Error()
	}
	if h.Node != nd.id {
		c.t.Fatalf("%s's admin address %s is answered by node %q", nd.id, nd.httpAddr(), h.Node)
	}
	return true, ""
}

// kill sends SIGKILL to nd and waits for the process to end.
func (c *cluster) kill(nd *node) {
	c.t.Helper()
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.mu.Unlock()
	if cmd == nil || !nd.running() {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s did not exit 10s after SIGKILL", nd.id)
	}
}

// waitExit waits for nd's process to end by itself (after a leave).
func (c *cluster) waitExit(nd *node, timeout time.Duration) {
	c.t.Helper()
	nd.mu.Lock()
	exited := nd.exited
	nd.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(timeout):
		c.t.Fatalf("%s did not exit within %s", nd.id, timeout)
	}
}

// teardown kills every process; logs and data are removed when the test
// passed and kept and reported when it failed.
func (c *cluster) teardown() {
	for _, nd := range c.nodes {
		nd.mu.Lock()
		cmd, exited := nd.cmd, nd.exited
		nd.mu.Unlock()
		if cmd == nil {
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	if !c.t.Failed() {
		_ = os.RemoveAll(c.root)
		return
	}
	c.t.Logf("agent data and logs kept in %s", c.root)
	for _, nd := range c.nodes {
		c.t.Logf("---- %s: %s (last 40 lines)\n%s", nd.id, nd.logPath, tail(nd.logPath, 40))
	}
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// live returns the nodes whose processes run.
func (c *cluster) live() []*node {
	var out []*node
	for _, nd := range c.nodes {
		if nd.running() {
			out = append(out, nd)
		}
	}
	return out
}

func (c *cluster) node(id string) *node {
	for _, nd := range c.nodes {
		if nd.id == id {
			return nd
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

func ids(nodes []*node) []string {
	out := make([]string, 0, len(nodes))
	for _, nd := range nodes {
		out = append(out, nd.id)
	}
	return out
}

// eventually polls cond every 50 ms until it holds and returns how long it
// took; after timeout it fails the test with cond's last explanation.
func eventually(t testing.TB, what string, timeout time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, why := cond()
		if ok {
			if d := time.Since(start); d > time.Second {
				t.Logf("%s: after %s", what, d.Round(time.Millisecond))
			}
			return time.Since(start)
		}
		last = why
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting until %s: %s", timeout, what, last)
		}
		<-tick.C
	}
}

// apiClient calls one agent's admin API.
type apiClient struct {
	base  string
	hc    *http.Client
	token string // the agent's admin token, if it has one
}

func newAPIClient(addr string) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // a killed agent must not leave dead pooled connections
	return &apiClient{base: "http://" + addr, hc: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
}

// apiError is a non-2xx answer.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Msg) }

func (c *apiClient) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json") // the agent requires it of state-changing calls
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var ae agent.APIError
		_ = json.Unmarshal(b, &ae)
		return &apiError{Status: resp.StatusCode, Msg: ae.Error}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (c *apiClient) get(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, q, nil, out)
}

func (c *apiClient) put(ctx context.Context, state, key, value string) (agent.WriteResult, error) {
	var r agent.WriteResult
	err := c.do(ctx, http.MethodPut, "/v1/kv/"+url.PathEscape(key), url.Values{"state": {state}}, []byte(value), &r)
	return r, err
}

func (c *apiClient) members() ([]agent.Member, error) {
	var ms []agent.Member
	err := c.get(context.Background(), "/v1/members", nil, &ms)
	return ms, err
}

func (c *apiClient) dump(state string, q url.Values) (agent.StateDump, error) {
	var d agent.StateDump
	err := c.get(context.Background(), "/v1/states/"+state, q, &d)
	return d, err
}

func (c *apiClient) raft() (agent.RaftStatus, error) {
	var st agent.RaftStatus
	err := c.get(context.Background(), "/v1/raft", nil, &st)
	return st, err
}

func (c *apiClient) setFaults(drop []string) error {
	b, _ := json.Marshal(agent.FaultsRequest{Drop: drop})
	return c.do(context.Background(), http.MethodPost, "/v1/test/faults", nil, b, nil)
}

func (c *apiClient) faults() (agent.FaultsStatus, error) {
	var st agent.FaultsStatus
	err := c.get(context.Background(), "/v1/test/faults", nil, &st)
	return st, err
}

// notReady reports an answer that says the state is not registered yet
// (durable-kv before Raft has a leader): the write was not attempted.
func notReady(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && strings.Contains(ae.Msg, "not ready")
}

// refused reports a connection that was never made: the agent is down.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// cli runs the dstatectl binary against nd's admin API and returns its
// standard output.
func (c *cluster) cli(nd *node, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dstatectl, append([]string{"--addr", nd.httpAddr()}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("dstatectl %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

func bg() context.Context { return context.Background() }
