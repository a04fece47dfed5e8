package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testPKI is a throwaway certificate authority, all in memory.
type testPKI struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	pool   *x509.CertPool
	serial int64
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "dstate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{ca: ca, caKey: key, pool: pool, serial: 1}
}

// nodeCert issues a certificate for 127.0.0.1 usable as server and client,
// named name.
func (p *testPKI) nodeCert(t testing.TB, name string) tls.Certificate {
	t.Helper()
	return p.nodeCertNames(t, name)
}

// tlsConfig returns a node's config: its certificate and the CA as root;
// with mutual, the server also requires a client certificate from the CA.
func (p *testPKI) tlsConfig(t testing.TB, name string, mutual bool) *tls.Config {
	cfg := &tls.Config{
		Certificates: []tls.Certificate{p.nodeCert(t, name)},
		RootCAs:      p.pool,
		MinVersion:   tls.VersionTLS12,
	}
	if mutual {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = p.pool
	}
	return cfg
}

func TestTLS(t *testing.T) {
	for _, mutual := range []bool{false, true} {
		name := "server auth"
		if mutual {
			name = "mutual"
		}
		t.Run(name, func(t *testing.T) {
			pki := newTestPKI(t)
			a := startNode(t, "a", func(c *Config) { c.TLS = pki.tlsConfig(t, "a", mutual) })
			b := startNode(t, "b", func(c *Config) { c.TLS = pki.tlsConfig(t, "b", mutual) })
			a.SetPeer("b", b.Addr())
			b.SetPeer("a", a.Addr())
			require.NoError(t, a.Send("b", []byte("to b")))
			require.NoError(t, b.Send("a", []byte("to a")))
			require.Equal(t, received{from: "a", frame: "to b"}, b.in.next(t))
			require.Equal(t, received{from: "b", frame: "to a"}, a.in.next(t))
			require.Zero(t, a.Stats().HandshakeFailures)
			require.Zero(t, b.Stats().HandshakeFailures)
		})
	}
}

func TestMutualTLSRefusesClientWithoutCertificate(t *testing.T) {
	pki := newTestPKI(t)
	b := startNode(t, "b", func(c *Config) { c.TLS = pki.tlsConfig(t, "b", true) })
	a := startNode(t, "a", func(c *Config) {
		c.TLS = pki.tlsConfig(t, "a", false)
		// a can serve, but offers no certificate as a client.
		c.TLS.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &tls.Certificate{}, nil
		}
	})
	a.SetPeer("b", b.Addr())
	require.NoError(t, a.Send("b", []byte("x")))

	herr := a.peerHandshakeError(t, "b")
	require.ErrorIs(t, herr, ErrHandshake)
	require.NotZero(t, a.Stats().HandshakeFailures)
	require.Eventually(t, func() bool { return b.Stats().HandshakeFailures > 0 }, waitTimeout, pollEvery)
	require.Zero(t, b.Stats().FramesIn)
	require.False(t, a.PeerStats()["b"].Connected)
}

func TestPlaintextClientToTLSServerFails(t *testing.T) {
	pki := newTestPKI(t)
	b := startNode(t, "b", func(c *Config) { c.TLS = pki.tlsConfig(t, "b", false) })
	a := startNode(t, "a", nil)
	a.SetPeer("b", b.Addr())
	require.NoError(t, a.Send("b", []byte("x")))

	herr := a.peerHandshakeError(t, "b")
	require.ErrorIs(t, herr, ErrHandshake)
	require.Equal(t, b.Addr(), herr.Addr)
	require.Eventually(t, func() bool { return b.Stats().HandshakeFailures > 0 }, waitTimeout, pollEvery)
	require.Zero(t, b.Stats().FramesIn)
}

func TestTLSClientToPlaintextServerFails(t *testing.T) {
	pki := newTestPKI(t)
	b := startNode(t, "b", nil)
	a := startNode(t, "a", func(c *Config) { c.TLS = pki.tlsConfig(t, "a", false) })
	a.SetPeer("b", b.Addr())

	herr := a.peerHandshakeError(t, "b")
	require.ErrorIs(t, herr, ErrHandshake)
	b.logs.waitLoggedError(t, "transport: inbound handshake failed", ErrBadMagic)
}
