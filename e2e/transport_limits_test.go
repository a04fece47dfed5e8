package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
	"github.com/dstate-go/dstate/pkg/transport"
)

// transportLimitsMaxRSS bounds the attacked agent's resident memory: the
// 64 MiB reassembly budget over an idle agent's few tens of MiB, with room
// for the garbage collector. Without the budget the six partial messages
// alone hold 192 MiB.
const transportLimitsMaxRSS = 224 << 20

// transportHello is a transport handshake hello from node id in cluster.
func transportHello(cluster, id string) []byte {
	b := []byte("DSTT")
	b = binary.BigEndian.AppendUint16(b, transport.ProtocolVersion)
	b = append(b, 1)
	for _, s := range []string{cluster, id} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b
}

// TestTransportLimitsHoldAgainstIdleAndUnfinishedConnections attacks the
// state transport port of a real agent process, as one host on the
// network: 50 connections that send a hello and then nothing (only the
// per-host cap's worth are answered, and those are closed after
// --transport-idle-timeout), then six connections that each send 31 MiB
// of a 32 MiB message and stop (those that would pass
// --max-reassembly-bytes are closed). Each refusal shows in
// dstate_limit_exceeded_total, the agent stays within its memory bound,
// and the two nodes keep replicating without reconnecting.
func TestTransportLimitsHoldAgainstIdleAndUnfinishedConnections(t *testing.T) {
	const (
		perHost = 8
		frame   = 16 << 20
		message = 2 * frame
		budget  = 2 * message
	)
	c := newCluster(t, 2, clusterOpts{extra: func(int) []string {
		return []string{"--transport-max-conns-per-host", fmt.Sprint(perHost), "--transport-idle-timeout", "1s",
			"--max-frame-bytes", fmt.Sprint(frame), "--max-message-bytes", fmt.Sprint(message),
			"--max-reassembly-bytes", fmt.Sprint(budget)}
	}})
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)
	c.mustPut(c.nodes[0], agent.KVState, "before", "1")
	c.waitConverged(c.nodes, 30*time.Second, agent.KVState)
	target := c.nodes[0]
	limit := func(name string) float64 {
		m, err := scrape(target)
		if err != nil {
			t.Fatal(err)
		}
		return m[fmt.Sprintf("dstate_limit_exceeded_total{limit=%q}", name)]
	}
	dial := func(id string) (net.Conn, *bufio.Reader) {
		conn, err := net.DialTimeout("tcp", target.addr(1), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if _, err := conn.Write(transportHello(c.name, id)); err != nil {
			t.Fatal(err)
		}
		return conn, bufio.NewReader(conn)
	}

	// Idle connections: the peer's own connection and at most perHost-1
	// of these are answered; the rest are closed at once.
	answered := 0
	for i := range 50 {
		conn, br := dial(fmt.Sprintf("idle-%d", i))
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		head := make([]byte, 7)
		if _, err := br.Read(head); err == nil {
			answered++
		}
	}
	if answered > perHost-1 {
		t.Fatalf("%d idle connections from one host answered, want at most %d", answered, perHost-1)
	}
	if got := limit("transport_max_conns_per_host"); got < float64(50-answered) {
		t.Fatalf("transport_max_conns_per_host refusals %v, want at least %d", got, 50-answered)
	}
	eventually(t, "the idle connections are closed", 30*time.Second, func() (bool, string) {
		got := limit("transport_idle_timeout")
		return got >= float64(answered), fmt.Sprintf("%v idle timeouts", got)
	})

	// Unfinished messages: the budget holds two; the others are closed.
	var senders sync.WaitGroup
	defer senders.Wait()
	chunk := make([]byte, 1<<20)
	for i := range 6 {
		conn, br := dial(fmt.Sprintf("big-%d", i))
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := br.Read(make([]byte, 7)); err != nil {
			t.Fatalf("big-%d: no hello: %v", i, err)
		}
		senders.Go(func() {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Minute))
			for f, more := range []bool{true, false} {
				n := uint32(frame)
				if more {
					n |= 1 << 31
				}
				if _, err := conn.Write(binary.BigEndian.AppendUint32(nil, n)); err != nil {
					return
				}
				for range frame/len(chunk) - f { // the last MiB never comes
					if _, err := conn.Write(chunk); err != nil {
						return
					}
				}
			}
		})
	}
	eventually(t, "the messages over the budget are refused", 60*time.Second, func() (bool, string) {
		got := limit("max_reassembly_bytes")
		return got >= 4, fmt.Sprintf("%v refused", got)
	})
	m, err := scrape(target)
	if err != nil {
		t.Fatal(err)
	}
	if held := m["dstate_transport_reassembly_bytes"]; held > budget {
		t.Errorf("partial messages hold %v bytes, over the %d budget", held, budget)
	}
	rss := m["process_resident_memory_bytes"]
	t.Logf("resident memory with the budget full: %.0f MiB", rss/(1<<20))
	switch {
	case raceAgents():
		// The race detector multiplies memory use (5–10x); the bound is
		// checked on agents built without it (make test, make e2e).
		t.Logf("agents built with -race: resident memory not compared with %d MiB", transportLimitsMaxRSS>>20)
	case rss > transportLimitsMaxRSS:
		t.Errorf("resident memory %.0f MiB, over %d MiB", rss/(1<<20), transportLimitsMaxRSS>>20)
	}
	if !target.running() {
		t.Fatalf("the agent exited:\n%s", tail(target.logPath, 20))
	}

	// Small messages pass the full budget: the nodes keep replicating
	// on the connections they had, with the attack still holding it.
	c.mustPut(c.nodes[1], agent.KVState, "during", "1")
	c.waitConverged(c.nodes, 30*time.Second, agent.KVState)
	for _, nd := range c.nodes {
		m, err := scrape(nd)
		if err != nil {
			t.Fatal(err)
		}
		if r := m[`dstate_transport_reconnects_total`]; r != 0 {
			t.Errorf("%s reconnected %v times during the attack", nd.id, r)
		}
	}
}
