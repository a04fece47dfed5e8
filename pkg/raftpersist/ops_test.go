package raftpersist

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/stretchr/testify/require"
)

func TestMembershipChangesForwardedAndStats(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 20*time.Second)
	l := c.leader()
	require.NoError(t, stateOf(c.node(l), "s").Save(ctx, obj(1, 1, "before join"), nil))

	ln := listen(t, "127.0.0.1:0")
	cfg := fastConfig("n3", filepath.Join(t.TempDir(), "n3"), ln)
	n3, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n3.Close() })

	f := c.node(c.follower())
	require.NoError(t, f.AddNonvoter(ctx, "n3", n3.Addr()), "forwarded from a follower")
	eventually(t, 10*time.Second, func() bool {
		e := n3.LoadLocal("s", c.node(l).ID())
		return e != nil && string(e.Data) == "before join"
	}, "the non-voter to replicate")
	// The follower learns the new configuration when the leader's next
	// append reaches it.
	eventually(t, 10*time.Second, func() bool {
		servers, err := f.Servers()
		require.NoError(t, err)
		return len(servers) == 4
	}, "the follower to see 4 servers")

	eventually(t, 10*time.Second, func() bool {
		st, err := f.Stats(ctx)
		require.NoError(t, err)
		if len(st.Peers) != 4 {
			return false
		}
		for _, p := range st.Peers {
			if p.Err != "" || p.Trailing != 0 {
				return false
			}
			if p.ID == "n3" && p.Suffrage != "Nonvoter" {
				t.Fatalf("n3 is %s, want Nonvoter", p.Suffrage)
			}
			if p.ID == st.Leader && (p.State != "Leader" || p.LastContact != 0) {
				t.Fatalf("leader %s reports state %s, last contact %s", p.ID, p.State, p.LastContact)
			}
		}
		return true
	}, "every peer to report stats and catch up")

	require.NoError(t, f.AddVoter(ctx, "n3", n3.Addr()))
	eventually(t, 10*time.Second, func() bool {
		servers, err := c.node(l).Servers()
		require.NoError(t, err)
		for _, s := range servers {
			if s.ID == "n3" {
				return !s.Nonvoter
			}
		}
		return false
	}, "n3 to become a voter")
	// n3 can save and read through the leader.
	require.NoError(t, stateOf(n3, "s").Save(ctx, obj(1, 1, "from n3"), nil))

	require.NoError(t, c.node(c.leader()).RemoveServer(ctx, "n3"))
	eventually(t, 10*time.Second, func() bool {
		servers, err := f.Servers()
		require.NoError(t, err)
		return len(servers) == 3
	}, "n3 to be removed")
	// Its saves stay loadable (a replaced node's state survives).
	got, err := stateOfNode(f, "s", "n3").Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "from n3", got.Value)
}

func TestBootstrapExpect(t *testing.T) {
	var lns []net.Listener
	var servers []Server
	for i := range 3 {
		ln := listen(t, "127.0.0.1:0")
		lns = append(lns, ln)
		servers = append(servers, Server{ID: dstate.NodeID(fmt.Sprint("e", i)), Address: ln.Addr().String()})
	}
	dir := t.TempDir()
	var stores []*Store
	t.Cleanup(func() {
		for _, s := range stores {
			_ = s.Close()
		}
	})
	cfgs := make([]Config, 3)
	for i := range 3 {
		cfgs[i] = fastConfig(servers[i].ID, filepath.Join(dir, string(servers[i].ID)), lns[i])
		cfgs[i].BootstrapExpect = 3
		s, err := New(cfgs[i])
		require.NoError(t, err)
		stores = append(stores, s)
	}
	// Nobody bootstraps before all three are known.
	for _, s := range stores {
		id, _ := s.Leader()
		require.Empty(t, id)
	}
	// Discovery (serf in the agent) tells each store about the others.
	for _, s := range stores {
		for _, srv := range servers {
			require.NoError(t, s.ObserveServer(srv))
		}
	}
	ctx := ctxT(t, 20*time.Second)
	_, _, err := stores[1].WaitLeader(ctx)
	require.NoError(t, err)
	require.NoError(t, stateOf(stores[2], "s").Save(ctx, obj(1, 1, "x"), nil))

	// Restarting with a full known list does not bootstrap again.
	require.NoError(t, stores[0].Close())
	cfg := cfgs[0]
	cfg.Listener = listen(t, servers[0].Address)
	cfg.KnownServers = servers
	s, err := New(cfg)
	require.NoError(t, err)
	stores[0] = s
	got, err := stateOfNode(s, "s", "e2").Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "x", got.Value)
}

// testCA issues certificates for loopback from a fresh CA.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// config returns a mutual-TLS config with a leaf valid for 127.0.0.1.
func (ca *testCA) config(t *testing.T, name string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      ca.pool, ClientCAs: ca.pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12,
	}
}

func TestMutualTLSCluster(t *testing.T) {
	ca := newTestCA(t)
	c := newCluster(t, 3, func(i int, cfg *Config) { cfg.TLS = ca.config(t, fmt.Sprint("n", i)) })
	ctx := ctxT(t, 10*time.Second)
	f := c.node(c.follower())
	require.NoError(t, stateOf(f, "s").Save(ctx, obj(1, 1, "over TLS"), nil), "a forwarded save")
	got, err := stateOf(c.node(c.leader()), "s").Load(ctx)
	require.Nil(t, got)
	require.NoError(t, err)
	got, err = stateOfNode(c.node(c.leader()), "s", f.ID()).Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "over TLS", got.Value)

	addr := f.Addr()
	t.Run("plaintext is rejected", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		require.NoError(t, err)
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = conn.Write([]byte{protoForward})
		_ = writeFrame(conn, []byte{reqStats})
		_, err = readFrame(conn, 1<<20)
		require.Error(t, err, "a plaintext client got an answer")
	})
	t.Run("untrusted client certificate is rejected", func(t *testing.T) {
		other := newTestCA(t).config(t, "intruder")
		other.RootCAs = ca.pool // trusts the server, but is not trusted by it
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, other)
		if err == nil {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
			_, _ = conn.Write([]byte{protoForward})
			_ = writeFrame(conn, []byte{reqStats})
			_, err = readFrame(conn, 1<<20)
		}
		require.Error(t, err, "a client with an untrusted certificate got an answer")
	})
	t.Run("wrong server name is rejected", func(t *testing.T) {
		cfg := ca.config(t, "client")
		cfg.ServerName = "not-the-server.example"
		_, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, cfg)
		require.Error(t, err)
	})
}
