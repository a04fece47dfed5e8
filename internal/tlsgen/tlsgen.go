package tlsgen

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dstate-go/dstate/internal/certid"
)

// Defaults of NewCA and Issue.
const (
	// DefaultCAValidity is how long a CA made by NewCA is valid when no
	// validity is given: 10 years.
	DefaultCAValidity = 10 * 365 * 24 * time.Hour
	// DefaultNodeValidity is how long a node certificate is valid when no
	// validity is given: 1 year.
	DefaultNodeValidity = 365 * 24 * time.Hour
	// DefaultCAName is the CA's CommonName when NewCA is given none.
	DefaultCAName = "dstate CA"
	// clockSkew backdates NotBefore so that a peer whose clock is a little
	// behind accepts a fresh certificate.
	clockSkew = 5 * time.Minute
)

// File names of a CA directory and of node certificates in it, as
// (*CA).WriteFiles, (*CA).IssueFiles and LoadCADir use them.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// NodeCertFile is the file name of nodeID's certificate: "<id>.pem".
func NodeCertFile(nodeID string) string { return nodeID + ".pem" }

// NodeKeyFile is the file name of nodeID's private key: "<id>-key.pem".
func NodeKeyFile(nodeID string) string { return nodeID + "-key.pem" }

// DefaultHosts are the subject alternative names a node certificate gets
// besides its node ID when IssueOptions names none: the loopback addresses
// and localhost.
var DefaultHosts = []string{"127.0.0.1", "::1", "localhost"}

// CA is a certificate authority: its certificate and the key that signs
// node certificates. Make one with NewCA or LoadCA.
type CA struct {
	// Cert is the parsed CA certificate.
	Cert *x509.Certificate
	// CertPEM is Cert in PEM form, as written to ca.pem.
	CertPEM []byte

	key crypto.Signer
}

// NewCA makes a self-signed ECDSA P-256 CA named name (DefaultCAName when
// empty), valid from now for validity (DefaultCAValidity when 0).
func NewCA(name string, validity time.Duration) (*CA, error) {
	if name == "" {
		name = DefaultCAName
	}
	if validity < 0 {
		return nil, fmt.Errorf("%w: CA validity %s is negative", ErrValidity, validity)
	}
	if validity == 0 {
		validity = DefaultCAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsgen: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs node certificates, never another CA
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlsgen: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsgen: parse the new CA certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}, nil
}

// LoadCA reads a CA from its certificate and key files (PEM; the key in
// PKCS #8 or SEC 1 form). It fails with a *FileError naming the file when
// one cannot be read, holds no certificate or key, is not a CA certificate
// that may sign, has expired, or when the key is not the certificate's.
func LoadCA(certFile, keyFile string) (*CA, error) {
	const whatCert, whatKey = "CA certificate", "CA key"
	certPEM, err := readFile(whatCert, certFile)
	if err != nil {
		return nil, err
	}
	block := findBlock(certPEM, "CERTIFICATE")
	if block == nil {
		return nil, &FileError{What: whatCert, Path: certFile, Reason: "no PEM CERTIFICATE block", Err: ErrBadPEM}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, &FileError{What: whatCert, Path: certFile, Reason: "does not parse: " + err.Error(), Err: ErrBadPEM}
	}
	switch {
	case !cert.IsCA || !cert.BasicConstraintsValid:
		return nil, &FileError{What: whatCert, Path: certFile, Reason: fmt.Sprintf("%q is not a CA certificate", cert.Subject.CommonName), Err: ErrNotCA}
	case cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return nil, &FileError{What: whatCert, Path: certFile, Reason: fmt.Sprintf("%q may not sign certificates (no cert-sign key usage)", cert.Subject.CommonName), Err: ErrNotCA}
	case time.Now().After(cert.NotAfter):
		return nil, &FileError{What: whatCert, Path: certFile, Reason: fmt.Sprintf("%q expired on %s", cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339)), Err: ErrNotCA}
	}
	keyPEM, err := readFile(whatKey, keyFile)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, &FileError{What: whatKey, Path: keyFile, Reason: err.Error(), Err: ErrBadPEM}
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, &FileError{What: whatKey, Path: keyFile, Reason: "is not the key of the CA certificate " + certFile, Err: ErrKeyMismatch}
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), key: key}, nil
}

// LoadCADir is LoadCA of dir's ca.pem and ca-key.pem.
func LoadCADir(dir string) (*CA, error) {
	return LoadCA(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
}

// ParseCertFile reads the first certificate of a PEM file. Errors are
// *FileError naming the file.
func ParseCertFile(path string) (*x509.Certificate, error) {
	data, err := readFile("certificate", path)
	if err != nil {
		return nil, err
	}
	block := findBlock(data, "CERTIFICATE")
	if block == nil {
		return nil, &FileError{What: "certificate", Path: path, Reason: "no PEM CERTIFICATE block", Err: ErrBadPEM}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, &FileError{What: "certificate", Path: path, Reason: "does not parse: " + err.Error(), Err: ErrBadPEM}
	}
	return cert, nil
}

// KeyPEM returns the CA's private key in PEM (PKCS #8) form.
func (ca *CA) KeyPEM() ([]byte, error) { return encodeKey(ca.key) }

// WriteFiles writes the CA's certificate and key to dir/ca.pem and
// dir/ca-key.pem (see the package-level WriteFiles) and returns their
// paths. dir is created (0700) when missing.
func (ca *CA) WriteFiles(dir string, overwrite bool) (certFile, keyFile string, err error) {
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	return certFile, keyFile, writePair("CA certificate", certFile, ca.CertPEM, "CA key", keyFile, keyPEM, overwrite)
}

// IssueOptions shape a node certificate. The zero value issues one for
// loopback use, valid DefaultNodeValidity.
type IssueOptions struct {
	// DNSNames and IPs are subject alternative names added to the node ID.
	// When both are empty, DefaultHosts are used.
	DNSNames []string
	IPs      []net.IP
	// Validity is how long the certificate is valid from now;
	// DefaultNodeValidity when 0. It must not end after the CA does (by
	// more than a few minutes; within those it ends with the CA).
	Validity time.Duration
}

// Issue makes a new ECDSA P-256 key and a certificate for nodeID signed by
// the CA, valid for both server and client authentication. The certificate
// names its node with the URI SAN dstate://node/<nodeID> (see
// certid.NodeURI), which is what peers check; nodeID is also the Subject
// CommonName and the first DNS name, for hostname verification. opts adds
// the other DNS names and IP addresses. It returns both in PEM form (the key
// in PKCS #8).
func (ca *CA) Issue(nodeID string, opts IssueOptions) (certPEM, keyPEM []byte, err error) {
	if err := ValidateNodeID(nodeID); err != nil {
		return nil, nil, err
	}
	dnsNames, ips := []string{nodeID}, opts.IPs
	extra := opts.DNSNames
	if len(opts.DNSNames) == 0 && len(opts.IPs) == 0 {
		extra = nil
		for _, h := range DefaultHosts {
			if ip := net.ParseIP(h); ip != nil {
				ips = append(ips, ip)
			} else {
				extra = append(extra, h)
			}
		}
	}
	for _, d := range extra {
		if why := hostProblem(d); why != "" {
			return nil, nil, fmt.Errorf("%w: %q %s", ErrBadName, d, why)
		}
		if !containsFold(dnsNames, d) {
			dnsNames = append(dnsNames, d)
		}
	}
	for _, ip := range ips {
		if ip == nil {
			return nil, nil, fmt.Errorf("%w: an IP address is nil", ErrBadName)
		}
	}
	validity := opts.Validity
	if validity < 0 {
		return nil, nil, fmt.Errorf("%w: validity %s is negative", ErrValidity, validity)
	}
	if validity == 0 {
		validity = DefaultNodeValidity
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) && !notAfter.After(ca.Cert.NotAfter.Add(clockSkew)) {
		// A validity as long as the CA's, asked for right after making it,
		// ends a moment after the CA (whose NotAfter is rounded down to the
		// second): end with the CA instead.
		notAfter = ca.Cert.NotAfter
	}
	if notAfter.After(ca.Cert.NotAfter) {
		return nil, nil, fmt.Errorf("%w: a certificate valid for %s would outlive the CA %q, which expires on %s; issue a shorter one or make a new CA",
			ErrValidity, validity, ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsgen: generate key of %s: %w", nodeID, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: nodeID},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
		URIs:                  []*url.URL{certid.NodeURI(nodeID)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsgen: create certificate of %s: %w", nodeID, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// IssueFiles issues nodeID's certificate and writes it to dir/<id>.pem and
// dir/<id>-key.pem (see WriteFiles), returning their paths. dir is created
// (0700) when missing.
func (ca *CA) IssueFiles(dir, nodeID string, opts IssueOptions, overwrite bool) (certFile, keyFile string, err error) {
	if err := ValidateNodeID(nodeID); err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, NodeCertFile(nodeID)), filepath.Join(dir, NodeKeyFile(nodeID))
	if !overwrite {
		// Refuse before the work of issuing.
		if err := checkAbsent([2]string{"certificate", certFile}, [2]string{"key", keyFile}); err != nil {
			return "", "", err
		}
	}
	certPEM, keyPEM, err := ca.Issue(nodeID, opts)
	if err != nil {
		return "", "", err
	}
	return certFile, keyFile, WriteFiles(certFile, certPEM, keyFile, keyPEM, overwrite)
}

// ValidateNodeID reports whether nodeID can name a certificate and its
// files: 1 to 253 bytes of letters, digits, '-', '_' and '.', in
// dot-separated labels of at most 63 bytes, not starting with '-' or '.',
// and not an IP address. The error matches ErrBadNodeID.
func ValidateNodeID(nodeID string) error {
	if why := hostProblem(nodeID); why != "" {
		return fmt.Errorf("%w: %q %s", ErrBadNodeID, nodeID, why)
	}
	if net.ParseIP(nodeID) != nil {
		return fmt.Errorf("%w: %q is an IP address; name the node and pass the address as an IP SAN", ErrBadNodeID, nodeID)
	}
	return nil
}

// hostProblem says what is wrong with a DNS-like name, or "".
func hostProblem(s string) string {
	switch {
	case s == "":
		return "is empty"
	case len(s) > 253:
		return fmt.Sprintf("is %d bytes long, more than 253", len(s))
	case s[0] == '-' || s[0] == '.':
		return fmt.Sprintf("starts with %q", s[0])
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return "has an empty label (two dots in a row, or a trailing dot)"
		}
		if len(label) > 63 {
			return fmt.Sprintf("has a label of %d bytes, more than 63", len(label))
		}
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Sprintf("contains %q (allowed: letters, digits, '-', '_' and '.')", r)
		}
	}
	return ""
}

// WriteFiles writes a certificate (mode 0644) and its private key (mode
// 0600), creating their directories (0700) when missing. Unless overwrite
// is set, it writes nothing when either file exists and fails with a
// *FileError matching fs.ErrExist; with overwrite an existing file is
// replaced atomically and a key file gets mode 0600 whatever it had.
func WriteFiles(certFile string, certPEM []byte, keyFile string, keyPEM []byte, overwrite bool) error {
	return writePair("certificate", certFile, certPEM, "key", keyFile, keyPEM, overwrite)
}

// writePair is WriteFiles with the files' roles for errors.
func writePair(certWhat, certFile string, certPEM []byte, keyWhat, keyFile string, keyPEM []byte, overwrite bool) error {
	if !overwrite {
		if err := checkAbsent([2]string{certWhat, certFile}, [2]string{keyWhat, keyFile}); err != nil {
			return err
		}
	}
	if err := writeFile(certWhat, certFile, certPEM, 0o644, overwrite); err != nil {
		return err
	}
	if err := writeFile(keyWhat, keyFile, keyPEM, 0o600, overwrite); err != nil {
		if !overwrite {
			_ = os.Remove(certFile) // nothing half written
		}
		return err
	}
	return nil
}

// checkAbsent fails when one of the (role, path) files exists.
func checkAbsent(files ...[2]string) error {
	for _, f := range files {
		_, err := os.Lstat(f[1])
		switch {
		case err == nil:
			return &FileError{What: f[0], Path: f[1], Reason: "already exists", Err: fs.ErrExist}
		case !errors.Is(err, fs.ErrNotExist):
			return &FileError{What: f[0], Path: f[1], Err: unwrapPath(err)}
		}
	}
	return nil
}

// writeFile writes one file: exclusively when !overwrite, else to a
// temporary file renamed over path.
func writeFile(what, path string, data []byte, perm os.FileMode, overwrite bool) error {
	fail := func(err error) error { return &FileError{What: what, Path: path, Err: unwrapPath(err)} }
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &FileError{What: what, Path: path, Reason: "cannot create its directory: " + unwrapPath(err).Error(), Err: err}
	}
	if !overwrite {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return &FileError{What: what, Path: path, Reason: "already exists", Err: fs.ErrExist}
			}
			return fail(err)
		}
		if err := writeClose(f, data); err != nil {
			_ = os.Remove(path)
			return fail(err)
		}
		return nil
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fail(err)
	}
	if err := writeClose(f, data); err != nil {
		_ = os.Remove(tmp)
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fail(err)
	}
	return nil
}

func writeClose(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readFile reads a file, turning a failure into a *FileError.
func readFile(what, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{What: what, Path: path, Err: unwrapPath(err)}
	}
	return b, nil
}

// unwrapPath drops the *fs.PathError around err: a FileError names the
// file itself.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// findBlock returns the first PEM block of type typ in data.
func findBlock(data []byte, typ string) *pem.Block {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil
		}
		if b.Type == typ {
			return b
		}
	}
}

// parseKey reads a PKCS #8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY")
// private key that can sign.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM PRIVATE KEY or EC PRIVATE KEY block")
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("PRIVATE KEY block does not parse: %v", err)
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("a %T cannot sign", k)
			}
			return s, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("EC PRIVATE KEY block does not parse: %v", err)
			}
			return k, nil
		}
	}
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsgen: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("tlsgen: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil // positive, never 0
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
