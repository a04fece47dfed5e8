//go:build linux

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
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
	relay  *relay   // the delaying relay, when started
}

// requireNetLab skips t with the reason when this process cannot build a
// lab: not root, ip or nft missing, or namespaces not permitted.
func requireNetLab(t testing.TB) {
	t.Helper()
	if why := netLabUnavailable(); why != "" {
		t.Skip(why)
	}
}

// netLabUnavailable returns why this process cannot build a lab (not
// root, ip or nft missing, namespaces or nftables not permitted), or ""
// when it can.
func netLabUnavailable() string {
	if os.Geteuid() != 0 {
		return "network namespace tests need root (ip netns, nft): run as root, as .ci/run does"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("network namespace tests need %s: install iproute2 and nftables (apt-get install -y iproute2 nftables; .ci/run does)", tool)
		}
	}
	probe := fmt.Sprintf("dse2e-%d-probe", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Sprintf("cannot create a network namespace here (needs CAP_SYS_ADMIN and a kernel with network namespaces): ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	out, err := exec.Command("ip", "netns", "exec", probe, "nft", "list", "tables").CombinedOutput()
	_ = exec.Command("ip", "netns", "del", probe).Run()
	if err != nil {
		return fmt.Sprintf("nftables does not work inside a network namespace here (kernel without nf_tables?): %v: %s", err, bytes.TrimSpace(out))
	}
	return ""
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

// ip returns agent i's address: on the bridge, or on the delaying relay
// once it runs.
func (l *netLab) ip(i int) string {
	if l.relay != nil {
		return relaySubnet + strconv.Itoa(i+1)
	}
	return labSubnet + strconv.Itoa(i+1)
}

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
	return startNetCluster(t, l, opts), l
}

// startNetCluster starts an agent in each of l's namespaces.
func startNetCluster(t testing.TB, l *netLab, opts clusterOpts) *cluster {
	t.Helper()
	n := len(l.nodes)
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
	return c
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

// heal removes every fault rule, brings every link up and lifts the
// relay's delay.
func (l *netLab) heal() {
	l.t.Helper()
	for i := range l.nodes {
		l.rules(i, nil, nil)
		l.link(i, true)
	}
	if l.relay != nil {
		l.relay.setDelay(0, 0)
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

// relaySubnet is the /24 of the delaying relay's links.
const relaySubnet = "10.199.2."

// relay is a link with delay and jitter built in the test, for kernels
// without the netem qdisc: every agent namespace gets a TUN device
// (dly0, addressed in relaySubnet) and the relay writes each IPv4 packet
// read from one to the device of its destination after delay ± jitter
// (uniform; packets may overtake each other, as under netem). Nothing is
// forwarded anywhere else.
type relay struct {
	devs   []*os.File
	mu     sync.Mutex
	delay  time.Duration
	jitter time.Duration
	rnd    *rand.Rand
	wg     sync.WaitGroup
}

// startRelay gives every agent a relay link with delay ± jitter; agents
// started afterwards bind to it. It is stopped when the test ends.
func (l *netLab) startRelay(delay, jitter time.Duration) {
	l.t.Helper()
	r := &relay{delay: delay, jitter: jitter, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))}
	l.t.Cleanup(r.stop) // before the namespaces go: registered after them
	for i := range l.nodes {
		var dev *os.File
		var derr error
		if err := l.inNamespace(i, func() { dev, derr = openTUN("dly0") }); err != nil {
			l.t.Fatal(err)
		}
		if derr != nil {
			l.t.Fatalf("relay link of %s: %v", l.nodes[i], derr)
		}
		r.devs = append(r.devs, dev)
		l.must("ip", "-n", l.nodes[i], "addr", "add", relaySubnet+strconv.Itoa(i+1)+"/24", "dev", "dly0")
		l.must("ip", "-n", l.nodes[i], "link", "set", "dly0", "up")
	}
	for _, dev := range r.devs {
		r.wg.Add(1)
		go r.forward(dev)
	}
	l.relay = r
}

// openTUN creates a TUN device (IPv4 packets, no packet information) in
// the calling thread's network namespace.
func openTUN(name string) (*os.File, error) {
	// Attached before the runtime's poller sees it: a TUN descriptor
	// polled before TUNSETIFF never reports readable.
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+name), nil
}

// setDelay changes the delay and jitter of packets read from now on.
func (r *relay) setDelay(delay, jitter time.Duration) {
	r.mu.Lock()
	r.delay, r.jitter = delay, jitter
	r.mu.Unlock()
}

// after returns the delay of the next packet.
func (r *relay) after() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.delay
	if r.jitter > 0 {
		d += time.Duration(r.rnd.Int64N(int64(2*r.jitter+1))) - r.jitter
	}
	return max(d, 0)
}

// forward reads packets from dev until it is closed and delivers each to
// its destination's device after the delay.
func (r *relay) forward(dev *os.File) {
	defer r.wg.Done()
	for {
		buf := make([]byte, 65536)
		n, err := dev.Read(buf)
		if err != nil {
			return
		}
		pkt := buf[:n]
		if n < 20 || pkt[0]>>4 != 4 {
			continue // IPv4 only
		}
		dst := net.IP(pkt[16:20]).String()
		if !strings.HasPrefix(dst, relaySubnet) {
			continue
		}
		i, err := strconv.Atoi(strings.TrimPrefix(dst, relaySubnet))
		if err != nil || i < 1 || i > len(r.devs) {
			continue
		}
		to := r.devs[i-1]
		time.AfterFunc(r.after(), func() { _, _ = to.Write(pkt) })
	}
}

// stop closes the devices (ending the forwarders; a delayed write after
// that fails and is dropped).
func (r *relay) stop() {
	for _, dev := range r.devs {
		_ = dev.Close()
	}
	r.wg.Wait()
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
		eventually(t, "n1 reaches n2 over the bridge", 10*time.Second, func() (bool, string) {
			err := reach(0, 1)
			return err == nil, fmt.Sprint(err)
		})
		l.partition([]int{0}, []int{1})
		if err := reach(0, 1); err == nil {
			t.Fatal("n1 reaches n2 across a partition")
		}
		l.heal()
		eventually(t, "n2 reaches n1 after the heal", 10*time.Second, func() (bool, string) {
			err := reach(1, 0)
			return err == nil, fmt.Sprint(err)
		})
		// The delaying relay carries traffic between its own addresses.
		l.startRelay(20*time.Millisecond, 5*time.Millisecond)
		eventually(t, "n1 reaches n2 over the relay", 10*time.Second, func() (bool, string) {
			err := reach(0, 1)
			return err == nil, fmt.Sprint(err)
		})
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
