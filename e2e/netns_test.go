//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The network lab: every agent runs in a network namespace of its own,
// joined by a veth pair to a bridge that lives in one more namespace of the
// test's own (no uplink, no route out: no traffic leaves the namespaces).
// Faults are nftables rules inside the agents' namespaces (so they cut
// gossip over UDP and TCP, Raft and the state transport together) and
// links set down. Each agent's admin API stays on its namespace's
// loopback; the test reaches it by creating its sockets inside that
// namespace (setns on a locked thread).

// labSubnet is the private /24 the lab's agents are addressed in; the
// bridge namespace has no other link, so the range never reaches a real
// network.
const labSubnet = "10.199.1."

// faultTable is the nftables table the lab's faults live in.
const faultTable = "dstate_e2e"

// labSeq tells the labs of one test binary apart.
var labSeq atomic.Int64

// netLab is a set of namespaces joined by a bridge, removed when the test
// ends (also when it fails).
type netLab struct {
	t      testing.TB
	prefix string   // every namespace and link name of the lab starts with it
	bridge string   // the bridge's namespace
	nodes  []string // the agents' namespaces
	veths  []string // each agent's link (inside its namespace)
}

// requireNetLab skips t with the reason when this process cannot build a
// lab: not root, ip or nft missing, or namespaces not permitted.
func requireNetLab(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespace tests need root (ip netns, nft): run as root, as .ci/run does")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("network namespace tests need %s: install iproute2 and nftables (apt-get install -y iproute2 nftables; .ci/run does)", tool)
		}
	}
	probe := fmt.Sprintf("dse2e-%d-probe", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here (needs CAP_SYS_ADMIN and a kernel with network namespaces): ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	out, err := exec.Command("ip", "netns", "exec", probe, "nft", "list", "tables").CombinedOutput()
	_ = exec.Command("ip", "netns", "del", probe).Run()
	if err != nil {
		t.Skipf("nftables does not work inside a network namespace here (kernel without nf_tables?): %v: %s", err, bytes.TrimSpace(out))
	}
}

// newNetLab creates n agent namespaces, addressed 10.199.1.1 to
// 10.199.1.n, each joined to a bridge in a namespace of its own; it skips
// the test (with the reason) where namespaces cannot be made.
func newNetLab(t testing.TB, n int) *netLab {
	t.Helper()
	requireNetLab(t)
	removeStaleLabs(t)
	l := &netLab{t: t, prefix: fmt.Sprintf("dse2e-%d-%d", os.Getpid(), labSeq.Add(1))}
	l.bridge = l.prefix + "-br"
	t.Cleanup(l.remove)
	l.must("ip", "netns", "add", l.bridge)
	l.must("ip", "-n", l.bridge, "link", "add", "br0", "type", "bridge")
	l.must("ip", "-n", l.bridge, "link", "set", "br0", "up")
	for i := range n {
		ns := fmt.Sprintf("%s-n%d", l.prefix, i+1)
		l.must("ip", "netns", "add", ns)
		l.nodes = append(l.nodes, ns)
		// Link names are per namespace: the same short names everywhere.
		veth, port := "eth0", fmt.Sprintf("p%d", i+1)
		l.veths = append(l.veths, veth)
		l.must("ip", "-n", l.bridge, "link", "add", port, "type", "veth", "peer", "name", veth, "netns", ns)
		l.must("ip", "-n", l.bridge, "link", "set", port, "master", "br0")
		l.must("ip", "-n", l.bridge, "link", "set", port, "up")
		l.must("ip", "-n", ns, "link", "set", "lo", "up")
		l.must("ip", "-n", ns, "addr", "add", l.ip(i)+"/24", "dev", veth)
		l.must("ip", "-n", ns, "link", "set", veth, "up")
	}
	return l
}

// ip returns agent i's address.
func (l *netLab) ip(i int) string { return labSubnet + strconv.Itoa(i+1) }

// ips returns the addresses of agents idx.
func (l *netLab) ips(idx []int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, l.ip(i))
	}
	return out
}

// run runs a command and returns its error with its output.
func (l *netLab) run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *netLab) must(args ...string) {
	l.t.Helper()
	if err := l.run(args...); err != nil {
		l.t.Fatal(err)
	}
}

// remove deletes the lab's namespaces (their links go with them). The
// cluster's processes are gone by now: the cluster's teardown, registered
// after the lab, runs first.
func (l *netLab) remove() {
	for _, ns := range append(append([]string(nil), l.nodes...), l.bridge) {
		if err := l.run("ip", "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			l.t.Errorf("removing the lab: %v", err)
		}
	}
	if left := labNamespaces(l.prefix + "-"); len(left) > 0 {
		l.t.Errorf("namespaces left after removing the lab: %v", left)
	}
}

// labNamespaces returns the namespaces whose names start with prefix.
func labNamespaces(prefix string) []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names
}

// removeStaleLabs deletes the namespaces of labs whose test binary died
// without its cleanup (killed by a signal): their names carry its pid.
func removeStaleLabs(t testing.TB) {
	for _, ns := range labNamespaces("dse2e-") {
		f := strings.SplitN(ns, "-", 3)
		if len(f) < 3 {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		if err := exec.Command("ip", "netns", "del", ns).Run(); err == nil {
			t.Logf("removed the namespace %s of a test binary (pid %d) that did not clean up", ns, pid)
		}
	}
}

// netCluster starts n agents, each in a namespace of a new lab, serf,
// the state transport and Raft bound to its lab address and the admin API
// on its namespace's loopback.
func netCluster(t testing.TB, n int, opts clusterOpts) (*cluster, *netLab) {
	t.Helper()
	l := newNetLab(t, n) // before the cluster: removed after its processes
	start := !opts.noStart
	opts.noStart = true
	c := newCluster(t, n, opts)
	for i, nd := range c.nodes {
		nd.host = l.ip(i)
		nd.prefix = []string{"ip", "netns", "exec", l.nodes[i]}
		nd.api = newAPIClient(nd.httpAddr())
		nd.api.hc.Transport.(*http.Transport).DialContext = l.dialer(i)
	}
	if start {
		for _, nd := range c.nodes {
			c.launch(nd)
		}
		for _, nd := range c.nodes {
			eventually(t, nd.id+" serves its admin API", 20*time.Second, func() (bool, string) {
				if !nd.running() {
					t.Fatalf("%s exited right after start (see %s)", nd.id, nd.logPath)
				}
				return c.serving(nd)
			})
		}
	}
	return c, l
}

// dialer returns a dial function whose sockets live in agent i's
// namespace (a socket stays in the namespace it was created in).
func (l *netLab) dialer(i int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		var derr error
		if err := l.inNamespace(i, func() { c, derr = (&net.Dialer{}).DialContext(ctx, network, addr) }); err != nil {
			return nil, err
		}
		return c, derr
	}
}

// listen listens on addr inside agent i's namespace.
func (l *netLab) listen(i int, addr string) (net.Listener, error) {
	var ln net.Listener
	var lerr error
	if err := l.inNamespace(i, func() { ln, lerr = net.Listen("tcp", addr) }); err != nil {
		return nil, err
	}
	return ln, lerr
}

// inNamespace runs fn on a thread switched into agent i's namespace, on a
// goroutine of its own: the thread switches back afterwards, and a thread
// that cannot switch back stays locked and ends with the goroutine.
func (l *netLab) inNamespace(i int, fn func()) error {
	path := "/run/netns/" + l.nodes[i]
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open this thread's network namespace: %w", err)
			return
		}
		defer self.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open network namespace %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		fn()
		if setns(self) == nil {
			runtime.UnlockOSThread()
		}
		done <- nil
	}()
	return <-done
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// nft loads script into agent i's namespace.
func (l *netLab) nft(i int, script string) error {
	cmd := exec.Command("ip", "netns", "exec", l.nodes[i], "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s\n%s", l.nodes[i], err, bytes.TrimSpace(out), script)
	}
	return nil
}

// rules replaces agent i's fault rules: in drops matching incoming
// packets, out outgoing ones (nft statements without the verdict);
// loopback is never touched (the admin API is reached over it).
func (l *netLab) rules(i int, in, out []string) {
	l.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {}\ndelete table inet %s\n", faultTable, faultTable)
	fmt.Fprintf(&b, "table inet %s {\n", faultTable)
	fmt.Fprintf(&b, "  chain in { type filter hook input priority 0; policy accept; iifname \"lo\" accept;\n")
	for _, r := range in {
		fmt.Fprintf(&b, "    %s drop\n", r)
	}
	fmt.Fprintf(&b, "  }\n  chain out { type filter hook output priority 0; policy accept; oifname \"lo\" accept;\n")
	for _, r := range out {
		fmt.Fprintf(&b, "    %s drop\n", r)
	}
	b.WriteString("  }\n}\n")
	if err := l.nft(i, b.String()); err != nil {
		l.t.Fatal(err)
	}
}

func addrSet(ips []string) string { return "{ " + strings.Join(ips, ", ") + " }" }

// partition cuts every agent of a off from every agent of b, both ways.
func (l *netLab) partition(a, b []int) {
	l.t.Helper()
	for _, side := range [][2][]int{{a, b}, {b, a}} {
		other := addrSet(l.ips(side[1]))
		for _, i := range side[0] {
			l.rules(i, []string{"ip saddr " + other}, []string{"ip daddr " + other})
		}
	}
}

// oneWay drops every packet from agent from to the agents to: they hear
// nothing from it, it still hears them.
func (l *netLab) oneWay(from int, to []int) {
	l.t.Helper()
	l.rules(from, nil, []string{"ip daddr " + addrSet(l.ips(to))})
}

// loss drops pct % of the packets every agent receives (on its lab link).
func (l *netLab) loss(pct int) {
	l.t.Helper()
	for i := range l.nodes {
		l.rules(i, []string{fmt.Sprintf("numgen random mod 100 < %d", pct)}, nil)
	}
}

// heal removes every fault rule and brings every link up.
func (l *netLab) heal() {
	l.t.Helper()
	for i := range l.nodes {
		l.rules(i, nil, nil)
		l.link(i, true)
	}
}

// link sets agent i's lab link up or down.
func (l *netLab) link(i int, up bool) {
	l.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	l.must("ip", "-n", l.nodes[i], "link", "set", l.veths[i], state)
}

// netem adds delay ± jitter to agent i's lab link, or says why it cannot
// (kernels without the netem qdisc).
func (l *netLab) netem(i int, delay, jitter time.Duration) error {
	return l.run("ip", "netns", "exec", l.nodes[i], "tc", "qdisc", "replace", "dev", l.veths[i], "root", "netem",
		"delay", fmt.Sprintf("%dms", delay.Milliseconds()), fmt.Sprintf("%dms", jitter.Milliseconds()))
}

// TestNetLab: the lab's namespaces reach each other over the bridge only,
// a partition rule cuts them apart and heal joins them again, and removing
// the lab leaves no namespace behind.
func TestNetLab(t *testing.T) {
	var prefix string
	t.Run("lab", func(t *testing.T) {
		l := newNetLab(t, 2)
		prefix = l.prefix
		reach := func(from, to int) error {
			ln, err := l.listen(to, l.ip(to)+":0")
			if err != nil {
				return err
			}
			defer ln.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			c, err := l.dialer(from)(ctx, "tcp", ln.Addr().String())
			if err != nil {
				return err
			}
			return c.Close()
		}
		if err := reach(0, 1); err != nil {
			t.Fatalf("n1 cannot reach n2 over the bridge: %v", err)
		}
		l.partition([]int{0}, []int{1})
		if err := reach(0, 1); err == nil {
			t.Fatal("n1 reaches n2 across a partition")
		}
		l.heal()
		if err := reach(1, 0); err != nil {
			t.Fatalf("n2 cannot reach n1 after the heal: %v", err)
		}
		// Nothing outside the lab is routed: no default route.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if c, err := l.dialer(0)(ctx, "tcp", "192.0.2.1:80"); err == nil {
			_ = c.Close()
			t.Fatal("a lab namespace reaches an address outside the lab")
		}
	})
	if prefix == "" {
		return // skipped
	}
	if left := labNamespaces(prefix + "-"); len(left) > 0 {
		t.Fatalf("namespaces left after the test: %v", left)
	}
}
