package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
)

// TestFailedStartLeavesNoMemberAndNoVoter starts a fourth server that
// joins a running 3-node cluster with one resource made to fail in turn:
// its admin, transport, Raft or gossip port taken, an unreadable TLS key, a
// data dir that is a file. Each start fails with the reason; afterwards no
// member lists the node (or only as left) and the Raft configuration still
// has exactly the 3 voters. Before, a start whose admin port was taken
// failed after it had joined gossip and been added as a voter.
func TestFailedStartLeavesNoMemberAndNoVoter(t *testing.T) {
	c := newCluster(t, 3, clusterOpts{})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.waitLeader(c.nodes, 30*time.Second)

	// take binds TCP (and, for gossip, UDP) on one of nd's ports.
	take := func(t *testing.T, nd *node, port int) {
		ln, err := net.Listen("tcp", nd.addr(port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ln.Close() })
		if port == 0 {
			pc, err := net.ListenPacket("udp", nd.addr(port))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = pc.Close() })
		}
	}
	cases := []struct {
		name   string
		prep   func(t *testing.T, nd *node) []string // extra flags
		reason string                                // in the log
	}{
		{"admin port taken", func(t *testing.T, nd *node) []string { take(t, nd, 3); return nil }, "http_addr"},
		{"transport port taken", func(t *testing.T, nd *node) []string { take(t, nd, 1); return nil }, "transport_addr"},
		{"raft port taken", func(t *testing.T, nd *node) []string { take(t, nd, 2); return nil }, "raft"},
		{"gossip port taken", func(t *testing.T, nd *node) []string { take(t, nd, 0); return nil }, "gossip"},
		{"unreadable TLS key", func(t *testing.T, nd *node) []string {
			p := newPKI(t, "start-fail")
			flags := p.tlsFlags(nd.id, nil)
			key := flags[3]
			if err := os.WriteFile(key, []byte("not a key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return flags
		}, "tls_key_file"},
		{"data dir is a file", func(t *testing.T, nd *node) []string {
			if err := os.MkdirAll(filepath.Dir(nd.dataDir), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(nd.dataDir, []byte("a file"), 0o600); err != nil {
				t.Fatal(err)
			}
			return nil
		}, "data_dir"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("n%d", 4+i)
			args := []string{"--bootstrap-expect", "0", "--join", c.nodes[0].addr(0)}
			oc := newCluster(t, 1, clusterOpts{noStart: true, extra: func(int) []string { return args }})
			oc.name = c.name
			nd := oc.nodes[0]
			nd.id = id
			nd.extra = append(nd.extra, tc.prep(t, nd)...)
			oc.launch(nd)
			oc.waitExit(nd, 30*time.Second)
			if code := nd.cmd.ProcessState.ExitCode(); code == 0 {
				t.Fatalf("%s exited with status 0; want a failed start", id)
			}
			if line := logLine(nd, tc.reason); line == "" {
				t.Fatalf("%s's log does not name %q (see %s)", id, tc.reason, nd.logPath)
			}
			for _, o := range c.nodes {
				ms, err := o.api.members()
				if err != nil {
					t.Fatal(err)
				}
				if st := memberStatus(ms, id); st != "" && st != "left" {
					t.Fatalf("%s lists %s as %s after its failed start", o.id, id, st)
				}
			}
			st, err := c.nodes[0].api.raft()
			if err != nil {
				t.Fatal(err)
			}
			if voters := countVoters(st); voters != 3 {
				t.Fatalf("raft peers after %s's failed start: %d voters, want 3: %+v", id, voters, st.Peers)
			}
		})
	}
}

// countVoters counts the voters of a Raft status.
func countVoters(st agent.RaftStatus) int {
	n := 0
	for _, p := range st.Peers {
		if p.Suffrage == "voter" {
			n++
		}
	}
	return n
}
