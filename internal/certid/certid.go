package certid

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Scheme and Host of the URI subject alternative name that names a node:
// dstate://node/<id>.
const (
	Scheme = "dstate"
	Host   = "node"
)

// NodeURI returns the URI subject alternative name that names node id in
// a certificate: dstate://node/<id>.
func NodeURI(id string) *url.URL {
	return &url.URL{Scheme: Scheme, Host: Host, Path: "/" + id}
}

// Binding says how a certificate names its node.
type Binding int

// The ways a certificate can name its node.
const (
	// ByNone: the certificate names no node (it has dstate:// URI SANs,
	// none of them a well-formed dstate://node/<id>, or neither such a SAN
	// nor a CommonName).
	ByNone Binding = iota
	// ByURI: the node IDs are those of the dstate://node/<id> URI SANs.
	ByURI
	// ByCommonName: the certificate has no dstate:// URI SAN, and its
	// Subject CommonName is the node ID (certificates of other tooling).
	ByCommonName
)

// String returns "URI SAN", "CommonName" or "nothing".
func (b Binding) String() string {
	switch b {
	case ByURI:
		return "URI SAN"
	case ByCommonName:
		return "CommonName"
	}
	return "nothing"
}

// NodeIDs returns the node IDs cert speaks for and how it names them.
// When cert has any URI SAN of scheme dstate, only its dstate://node/<id>
// SANs count (a malformed one names nothing, and the CommonName is then
// ignored); otherwise its Subject CommonName, when not empty, is the one
// node ID. DNS names never name a node: they are for hostname
// verification, and a name like localhost is on every default
// certificate.
func NodeIDs(cert *x509.Certificate) ([]string, Binding) {
	var ids []string
	dstateURI := false
	for _, u := range cert.URIs {
		if u == nil || !strings.EqualFold(u.Scheme, Scheme) {
			continue
		}
		dstateURI = true
		if id, ok := nodeOf(u); ok && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch {
	case len(ids) > 0:
		return ids, ByURI
	case dstateURI:
		return nil, ByNone
	case cert.Subject.CommonName != "":
		return []string{cert.Subject.CommonName}, ByCommonName
	}
	return nil, ByNone
}

// nodeOf returns the node ID of a dstate URI when it is exactly
// dstate://node/<id> with a non-empty id of one path segment.
func nodeOf(u *url.URL) (string, bool) {
	if u.Host != Host || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", false
	}
	id, ok := strings.CutPrefix(u.Path, "/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

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
	return fmt.Sprintf("%s, not the claimed node ID %q", Describe(cert), id)
}

// Names reports whether cert speaks for node id (see NodeIDs).
func Names(cert *x509.Certificate, id string) bool {
	ids, _ := NodeIDs(cert)
	return slices.Contains(ids, id)
}

// Describe says which node IDs cert speaks for, for error messages:
// `certificate names node ["n1"] by URI SAN`, or, when it names none,
// `certificate (CommonName "x") names no node`.
func Describe(cert *x509.Certificate) string {
	ids, how := NodeIDs(cert)
	if how == ByNone {
		return fmt.Sprintf("certificate (CommonName %q) names no node: it needs a %s://%s/<id> URI SAN or, without any %s:// URI SAN, a CommonName",
			cert.Subject.CommonName, Scheme, Host, Scheme)
	}
	return fmt.Sprintf("certificate names node %q by %s", ids, how)
}
