package certid_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/certid"
)

func TestMismatch(t *testing.T) {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: "n1"}, DNSNames: []string{"n1.example", "localhost"}}
	cs := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}
	require.Empty(t, certid.Mismatch(cs, "n1"))
	require.Empty(t, certid.Mismatch(cs, "n1.example"))
	require.Equal(t, `certificate names ["n1" "n1.example" "localhost"] do not include the claimed node ID "n2"`, certid.Mismatch(cs, "n2"))
	require.Empty(t, certid.Mismatch(tls.ConnectionState{}, "n2"), "no verified certificate binds nothing")
}
