package transport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TestMutualTLSRefusesAPeerClaimingAnotherNodesID: "mallory" holds a valid
// certificate from the cluster's CA, for its own name, and claims to be
// node "a" in the handshake. The acceptor refuses it before reading a frame.
func TestMutualTLSRefusesAPeerClaimingAnotherNodesID(t *testing.T) {
	pki := newTestPKI(t)
	b := startNode(t, "b", func(c *Config) { c.TLS = pki.tlsConfig(t, "b", true) })
	forger := startNode(t, "a", func(c *Config) { c.TLS = pki.tlsConfig(t, "mallory", true) })
	forger.SetPeer("b", b.Addr())
	require.NoError(t, forger.Send("b", []byte("pretending to be a")))

	herr := forger.peerHandshakeError(t, "b")
	require.ErrorIs(t, herr, ErrIdentityMismatch)
	require.True(t, herr.Refused)
	require.Contains(t, herr.Error(), `claimed node ID "a"`)
	require.Contains(t, herr.Error(), "mallory")
	// The dialer learns of the refusal before the acceptor's goroutine has
	// necessarily counted it: wait for the acceptor's log (counted first).
	b.logs.waitLoggedError(t, "transport: inbound handshake failed", ErrIdentityMismatch)
	require.NotZero(t, b.Stats().HandshakeFailures)
	require.Zero(t, b.Stats().FramesIn, "no frame of a refused peer is delivered")
}

// TestDialerRefusesAServerWhoseCertificateIsForAnotherNode: the address of
// peer "b" is answered by a node whose certificate says "mallory" (while its
// hello claims "b"); the dialer does not send to it.
func TestDialerRefusesAServerWhoseCertificateIsForAnotherNode(t *testing.T) {
	pki := newTestPKI(t)
	impostor := startNode(t, "b", func(c *Config) { c.TLS = pki.tlsConfig(t, "mallory", true) })
	a := startNode(t, "a", func(c *Config) { c.TLS = pki.tlsConfig(t, "a", true) })
	a.SetPeer("b", impostor.Addr())
	require.NoError(t, a.Send("b", []byte("for b only")))

	herr := a.peerHandshakeError(t, "b")
	require.ErrorIs(t, herr, ErrIdentityMismatch)
	require.False(t, herr.Refused, "the dialer itself refuses")
	require.Contains(t, herr.Error(), `"b"`)
	require.Zero(t, impostor.Stats().FramesIn)
}

// TestCertificateURINameBindsTheNodeID: a certificate whose CommonName is
// something else but which names the node ID as its dstate://node/ URI SAN
// is accepted.
func TestCertificateURINameBindsTheNodeID(t *testing.T) {
	pki := newTestPKI(t)
	b := startNode(t, "b", func(c *Config) { c.TLS = pki.tlsConfig(t, "b", true) })
	a := startNode(t, "a", func(c *Config) {
		c.TLS = pki.tlsConfig(t, "b", true)
		c.TLS.Certificates = []tls.Certificate{pki.nodeCertURI(t, "node a", "dstate://node/a", "localhost")}
	})
	a.SetPeer("b", b.Addr())
	require.NoError(t, a.Send("b", []byte("hello")))
	require.Equal(t, received{from: dstate.NodeID("a"), frame: "hello"}, b.in.next(t))
}

// TestCertificateDNSNameDoesNotBindTheNodeID: DNS names are for hostname
// verification only; a certificate for "mallory" that lists "a" and
// localhost as DNS names cannot claim either.
func TestCertificateDNSNameDoesNotBindTheNodeID(t *testing.T) {
	pki := newTestPKI(t)
	b := startNode(t, "b", func(c *Config) { c.TLS = pki.tlsConfig(t, "b", true) })
	for _, claim := range []string{"a", "localhost"} {
		forger := startNode(t, claim, func(c *Config) {
			c.TLS = pki.tlsConfig(t, "b", true)
			c.TLS.Certificates = []tls.Certificate{pki.nodeCertNames(t, "mallory", "a", "localhost")}
		})
		forger.SetPeer("b", b.Addr())
		require.NoError(t, forger.Send("b", []byte("pretending")))
		herr := forger.peerHandshakeError(t, "b")
		require.ErrorIs(t, herr, ErrIdentityMismatch)
		require.Contains(t, herr.Error(), `claimed node ID "`+claim+`"`)
	}
	require.Zero(t, b.Stats().FramesIn, "no frame of a refused peer is delivered")
}

// TestRepeatedHandshakeFailuresAreLoggedOncePerInterval: a scanner
// retrying a bad handshake does not flood the acceptor's log.
func TestRepeatedHandshakeFailuresAreLoggedOncePerInterval(t *testing.T) {
	pki := newTestPKI(t)
	b := startNode(t, "b", func(c *Config) { c.TLS = pki.tlsConfig(t, "b", true) })
	forger := startNode(t, "a", func(c *Config) {
		c.TLS = pki.tlsConfig(t, "mallory", true)
		c.ReconnectBackoffMin, c.ReconnectBackoffMax = 1e6, 2e6 // 1-2 ms between redials
	})
	forger.SetPeer("b", b.Addr())
	require.NoError(t, forger.Send("b", []byte("x")))
	require.Eventually(t, func() bool { return b.Stats().HandshakeFailures >= 20 }, waitTimeout, pollEvery)
	logged := 0
	for _, r := range b.logs.all() {
		if r.Message == "transport: inbound handshake failed" {
			logged++
		}
	}
	require.Equal(t, 1, logged, "one warning per remote host per interval")
}

// nodeCertNames issues a certificate with the given CommonName and DNS
// names, for 127.0.0.1.
func (p *testPKI) nodeCertNames(t testing.TB, cn string, dns ...string) tls.Certificate {
	t.Helper()
	return p.nodeCertURI(t, cn, "", dns...)
}

// nodeCertURI is nodeCertNames with a URI SAN, when uri is not empty.
func (p *testPKI) nodeCertURI(t testing.TB, cn, uri string, dns ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     dns,
	}
	if uri != "" {
		u, err := url.Parse(uri)
		require.NoError(t, err)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
