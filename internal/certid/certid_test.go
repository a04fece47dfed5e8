package certid_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/certid"
)

func uris(t *testing.T, raw ...string) []*url.URL {
	t.Helper()
	var out []*url.URL
	for _, r := range raw {
		u, err := url.Parse(r)
		require.NoError(t, err)
		out = append(out, u)
	}
	return out
}

func verified(cert *x509.Certificate) tls.ConnectionState {
	return tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}
}

func TestNodeURI(t *testing.T) {
	require.Equal(t, "dstate://node/n1", certid.NodeURI("n1").String())
}

// TestDNSNamesNeverBindANode: a certificate for n1 that lists localhost
// (as every default certificate does) and another node's ID as DNS names
// speaks for n1 only.
func TestDNSNamesNeverBindANode(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "n1"}, DNSNames: []string{"n1", "localhost", "n2"}}
	for _, claim := range []string{"localhost", "n2"} {
		require.False(t, certid.Names(cert, claim), "a DNS name must not bind node ID %q", claim)
		require.Equal(t, `certificate names node ["n1"] by CommonName, not the claimed node ID "`+claim+`"`, certid.Mismatch(verified(cert), claim))
	}
	require.True(t, certid.Names(cert, "n1"))
	require.Empty(t, certid.Mismatch(verified(cert), "n1"))
}

// TestURISANBindsTheNode: with a dstate://node/ URI SAN the CommonName
// does not count.
func TestURISANBindsTheNode(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "n1"}, DNSNames: []string{"n1", "localhost"},
		URIs: uris(t, "https://example.com/n3", "dstate://node/n2")}
	ids, how := certid.NodeIDs(cert)
	require.Equal(t, []string{"n2"}, ids)
	require.Equal(t, certid.ByURI, how)
	require.Empty(t, certid.Mismatch(verified(cert), "n2"))
	for _, claim := range []string{"n1", "localhost", "n3"} {
		require.Equal(t, `certificate names node ["n2"] by URI SAN, not the claimed node ID "`+claim+`"`, certid.Mismatch(verified(cert), claim))
	}
}

// TestCommonNameOnlyCertificate: a certificate of other tooling, without
// any dstate:// URI SAN, names the node of its CommonName.
func TestCommonNameOnlyCertificate(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "n1"}, URIs: uris(t, "spiffe://example.org/n2")}
	ids, how := certid.NodeIDs(cert)
	require.Equal(t, []string{"n1"}, ids)
	require.Equal(t, certid.ByCommonName, how)
	require.Empty(t, certid.Mismatch(verified(cert), "n1"))
	require.NotEmpty(t, certid.Mismatch(verified(cert), "n2"))
}

// TestMalformedDstateURINamesNothing: a dstate:// URI SAN that is not
// exactly dstate://node/<id> names no node, and the CommonName is not a
// fallback: the certificate was meant to be bound by URI.
func TestMalformedDstateURINamesNothing(t *testing.T) {
	for _, raw := range []string{"dstate://node/", "dstate://node/a/b", "dstate://nodes/n1", "dstate://node/n1?x=1",
		"dstate://node/n1#f", "dstate://u@node/n1", "dstate:node/n1", "DSTATE://other/n1"} {
		t.Run(raw, func(t *testing.T) {
			cert := &x509.Certificate{Subject: pkix.Name{CommonName: "n1"}, URIs: uris(t, raw)}
			ids, how := certid.NodeIDs(cert)
			require.Empty(t, ids)
			require.Equal(t, certid.ByNone, how)
			require.Contains(t, certid.Mismatch(verified(cert), "n1"), "names no node")
		})
	}
	require.False(t, certid.Names(&x509.Certificate{}, ""), "an empty CommonName names no node")
}

func TestNoVerifiedCertificateBindsNothing(t *testing.T) {
	require.Empty(t, certid.Mismatch(tls.ConnectionState{}, "n2"))
}
