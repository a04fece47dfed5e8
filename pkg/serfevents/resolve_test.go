package serfevents_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// dnsServer is an authoritative DNS server on loopback UDP answering A
// queries from a table that tests change while it runs.
type dnsServer struct {
	srv *dns.Server
	mu  sync.Mutex
	a   map[string][]string // fully qualified name -> IPv4 addresses
}

func startDNS(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	d := &dnsServer{a: map[string][]string{}}
	started := make(chan struct{})
	d.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.answer), NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = d.srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		_ = d.srv.Shutdown()
		<-done
	})
	return d
}

func (d *dnsServer) set(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.a[dns.Fqdn(name)] = ips
}

func (d *dnsServer) answer(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	d.mu.Lock()
	for _, q := range req.Question {
		ips, ok := d.a[q.Name]
		if !ok {
			m.Rcode = dns.RcodeNameError
			continue
		}
		if q.Qtype != dns.TypeA {
			continue // no AAAA records: the name has IPv4 addresses only
		}
		for _, ip := range ips {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: net.ParseIP(ip)})
		}
	}
	d.mu.Unlock()
	_ = w.WriteMsg(m)
}

// resolver is a Go resolver that asks only this server.
func (d *dnsServer) resolver() *net.Resolver {
	addr := d.srv.PacketConn.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", addr)
	}}
}

// startOnPort starts a membership bound to ip:port, or returns nil when
// that port is taken there.
func startOnPort(t *testing.T, id dstate.NodeID, ip string, port int) *serfevents.Membership {
	t.Helper()
	cfg := testConfig(id, t.TempDir())
	cfg.BindAddr = net.JoinHostPort(ip, strconv.Itoa(port))
	m, err := serfevents.New(cfg)
	if err != nil {
		return nil
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// TestJoinByNameTriesEveryAddress: a seed given by name is resolved and
// every address tried: a name resolving to an address where nobody
// listens and to two members (the headless-service pattern: one port,
// several IPs) joins both.
func TestJoinByNameTriesEveryAddress(t *testing.T) {
	d := startDNS(t)
	var a, b *serfevents.Membership
	var port int
	for range 50 {
		a = startOnPort(t, "a1", "127.0.0.1", 0)
		require.NotNil(t, a)
		_, p, err := net.SplitHostPort(a.LocalNode().Addr)
		require.NoError(t, err)
		port, _ = strconv.Atoi(p)
		if b = startOnPort(t, "b2", "127.0.0.3", port); b != nil {
			break
		}
		require.NoError(t, a.Shutdown())
	}
	require.NotNil(t, b, "no port free on both 127.0.0.1 and 127.0.0.3")
	d.set("seeds.dstate.test", "127.0.0.2", "127.0.0.1", "127.0.0.3")

	cfg := testConfig("c3", t.TempDir())
	cfg.Resolver = d.resolver()
	c := start(t, cfg)
	n, err := c.Join(ctxT(t), []string{fmt.Sprintf("seeds.dstate.test:%d", port)})
	require.NoError(t, err)
	require.Equal(t, 2, n, "got %d members answering, want both addresses that have one", n)
	eventually(t, "c3 sees a1 and b2 alive", func() bool {
		return statusOf(c, "a1") == serfevents.StatusAlive && statusOf(c, "b2") == serfevents.StatusAlive
	})
}

// TestJoinByNameRetriesUntilTheNameResolves: a name that does not resolve
// yet (a headless service without ready pods) fails a round naming the
// seed, and the join keeps resolving until the name has a member.
func TestJoinByNameRetriesUntilTheNameResolves(t *testing.T) {
	d := startDNS(t)
	seed := start(t, testConfig("s1", t.TempDir()))
	_, port, err := net.SplitHostPort(seed.LocalNode().Addr)
	require.NoError(t, err)

	cfg := testConfig("j2", t.TempDir())
	cfg.Resolver = d.resolver()
	j := start(t, cfg)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	joined := make(chan error, 1)
	go func() {
		_, err := j.Join(ctx, []string{"later.dstate.test:" + port})
		joined <- err
	}()
	eventually(t, "two failed join rounds", func() bool { return j.Stats().JoinAttempts >= 2 })
	require.Contains(t, j.Stats().LastJoinError, `resolve seed "later.dstate.test:`+port+`"`)
	d.set("later.dstate.test", "127.0.0.1")
	require.NoError(t, <-joined)
	eventually(t, "j2 sees s1 alive", func() bool { return statusOf(j, "s1") == serfevents.StatusAlive })
}
