package certid

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
)

// Mismatch returns why the verified peer certificate of cs does not vouch
// for node id, or "" when it does. A connection without a verified peer
// certificate (TLS without client certificates) binds no identity and
// returns "".
func Mismatch(cs tls.ConnectionState, id string) string {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	cert := cs.VerifiedChains[0][0]
	if Names(cert, id) {
		return ""
	}
	names := append([]string{cert.Subject.CommonName}, cert.DNSNames...)
	return fmt.Sprintf("certificate names %q do not include the claimed node ID %q", names, id)
}

// Names reports whether cert names id as its Subject CommonName or as one
// of its DNS names.
func Names(cert *x509.Certificate, id string) bool {
	return cert.Subject.CommonName == id || slices.Contains(cert.DNSNames, id)
}
