package tlsgen_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/certid"
	"github.com/dstate-go/dstate/internal/tlsgen"
)

func newCA(t testing.TB) *tlsgen.CA {
	t.Helper()
	ca, err := tlsgen.NewCA("test CA", 0)
	require.NoError(t, err)
	return ca
}

func parseCert(t testing.TB, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	require.NotNil(t, b, "no PEM block")
	require.Equal(t, "CERTIFICATE", b.Type)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

// verify checks cert against ca for name and both TLS roles.
func verify(ca *tlsgen.CA, cert *x509.Certificate, name string) error {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	_, err := cert.Verify(x509.VerifyOptions{
		DNSName: name, Roots: pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	return err
}

func TestNewCA(t *testing.T) {
	tests := []struct {
		name, caName string
		validity     time.Duration
		wantCN       string
		wantValidity time.Duration
	}{
		{name: "defaults", wantCN: tlsgen.DefaultCAName, wantValidity: tlsgen.DefaultCAValidity},
		{name: "named", caName: "ops CA", validity: 48 * time.Hour, wantCN: "ops CA", wantValidity: 48 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			ca, err := tlsgen.NewCA(tt.caName, tt.validity)
			require.NoError(t, err)
			c := parseCert(t, ca.CertPEM)
			require.Equal(t, ca.Cert.Raw, c.Raw, "CertPEM is Cert")
			require.True(t, c.IsCA && c.BasicConstraintsValid, "IsCA")
			require.NotZero(t, c.KeyUsage&x509.KeyUsageCertSign, "KeyUsageCertSign")
			require.Equal(t, tt.wantCN, c.Subject.CommonName)
			require.NoError(t, c.CheckSignatureFrom(c), "self-signed")
			pub, ok := c.PublicKey.(*ecdsa.PublicKey)
			require.True(t, ok, "got a %T key, want ECDSA", c.PublicKey)
			require.Equal(t, elliptic.P256(), pub.Curve)
			wantEnd := before.Add(tt.wantValidity)
			require.WithinDuration(t, wantEnd, c.NotAfter, time.Minute)
			require.True(t, c.NotBefore.Before(before), "NotBefore %s is not before now", c.NotBefore)
		})
	}
	t.Run("negative validity", func(t *testing.T) {
		_, err := tlsgen.NewCA("x", -time.Hour)
		require.ErrorIs(t, err, tlsgen.ErrValidity)
	})
}

func TestIssue(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name        string
		opts        tlsgen.IssueOptions
		wantDNS     []string
		wantIPs     []string
		verifiesFor []string
	}{
		{name: "defaults", wantDNS: []string{"n1", "localhost"}, wantIPs: []string{"127.0.0.1", "::1"},
			verifiesFor: []string{"n1", "N1", "localhost", "127.0.0.1", "::1"}},
		{name: "extra names replace the defaults",
			opts:    tlsgen.IssueOptions{DNSNames: []string{"n1.example.com", "n1"}, IPs: []net.IP{net.ParseIP("10.0.0.5")}},
			wantDNS: []string{"n1", "n1.example.com"}, wantIPs: []string{"10.0.0.5"},
			verifiesFor: []string{"n1", "n1.example.com", "10.0.0.5"}},
		{name: "only an IP", opts: tlsgen.IssueOptions{IPs: []net.IP{net.ParseIP("192.0.2.1")}},
			wantDNS: []string{"n1"}, wantIPs: []string{"192.0.2.1"}, verifiesFor: []string{"n1", "192.0.2.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := ca.Issue("n1", tt.opts)
			require.NoError(t, err)
			c := parseCert(t, certPEM)
			require.Equal(t, "n1", c.Subject.CommonName)
			require.Len(t, c.URIs, 1)
			require.Equal(t, "dstate://node/n1", c.URIs[0].String(), "the URI SAN names the node")
			ids, how := certid.NodeIDs(c)
			require.Equal(t, []string{"n1"}, ids, "the certificate speaks for n1 alone")
			require.Equal(t, certid.ByURI, how)
			require.False(t, certid.Names(c, "localhost"), "a DNS name of the certificate is not a node ID it speaks for")
			require.Equal(t, tt.wantDNS, c.DNSNames)
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			require.Equal(t, tt.wantIPs, ips)
			require.ElementsMatch(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, c.ExtKeyUsage)
			require.False(t, c.IsCA)
			for _, name := range tt.verifiesFor {
				require.NoError(t, verify(ca, c, name), "verify for %s", name)
			}
			var hostErr x509.HostnameError
			require.ErrorAs(t, verify(ca, c, "n2"), &hostErr, "a certificate of n1 must not verify for n2")
			_, err = tls.X509KeyPair(certPEM, keyPEM)
			require.NoError(t, err, "the key belongs to the certificate")
			require.True(t, strings.HasPrefix(string(keyPEM), "-----BEGIN PRIVATE KEY-----"), "PKCS #8 key")
		})
	}
}

func TestIssueValidity(t *testing.T) {
	ca, err := tlsgen.NewCA("short CA", 30*24*time.Hour)
	require.NoError(t, err)
	tests := []struct {
		name     string
		validity time.Duration
		want     time.Duration // 0: an ErrValidity error
	}{
		{name: "a day", validity: 24 * time.Hour, want: 24 * time.Hour},
		{name: "as long as the CA", validity: 30 * 24 * time.Hour, want: 30 * 24 * time.Hour},
		{name: "default outlives the CA", validity: 0},
		{name: "negative", validity: -time.Second},
		{name: "longer than the CA", validity: 31 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			certPEM, _, err := ca.Issue("n1", tlsgen.IssueOptions{Validity: tt.validity})
			if tt.want == 0 {
				require.ErrorIs(t, err, tlsgen.ErrValidity)
				return
			}
			require.NoError(t, err)
			require.WithinDuration(t, now.Add(tt.want), parseCert(t, certPEM).NotAfter, time.Minute)
		})
	}
	t.Run("default is a year", func(t *testing.T) {
		now := time.Now()
		certPEM, _, err := newCA(t).Issue("n1", tlsgen.IssueOptions{})
		require.NoError(t, err)
		require.WithinDuration(t, now.Add(tlsgen.DefaultNodeValidity), parseCert(t, certPEM).NotAfter, time.Minute)
	})
}

func TestIssueRefusesBadNames(t *testing.T) {
	ca := newCA(t)
	for _, id := range []string{"", "-n1", ".n1", "n1..x", "n1.", "a/b", "n 1", "n1:7946", "é", "10.0.0.1", "::1",
		strings.Repeat("a", 64), strings.Repeat("a.", 127) + "ab"} {
		t.Run("node "+id, func(t *testing.T) {
			_, _, err := ca.Issue(id, tlsgen.IssueOptions{})
			require.ErrorIs(t, err, tlsgen.ErrBadNodeID)
			require.ErrorIs(t, tlsgen.ValidateNodeID(id), tlsgen.ErrBadNodeID)
		})
	}
	for _, id := range []string{"n1", "node-1.dc1", "N_1", strings.Repeat("a", 63)} {
		require.NoError(t, tlsgen.ValidateNodeID(id), id)
	}
	_, _, err := ca.Issue("n1", tlsgen.IssueOptions{DNSNames: []string{"bad name"}})
	require.ErrorIs(t, err, tlsgen.ErrBadName)
	_, _, err = ca.Issue("n1", tlsgen.IssueOptions{IPs: []net.IP{nil}})
	require.ErrorIs(t, err, tlsgen.ErrBadName)
}

// TestOtherCA: a certificate of one CA does not verify against another.
func TestOtherCA(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	certPEM, _, err := other.Issue("n1", tlsgen.IssueOptions{})
	require.NoError(t, err)
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, verify(ca, parseCert(t, certPEM), "n1"), &unknown)
}

// TestMutualTLS runs a mutual TLS handshake between two issued
// certificates, each side checking the other's node ID.
func TestMutualTLS(t *testing.T) {
	ca := newCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	pair := func(id string) tls.Certificate {
		certPEM, keyPEM, err := ca.Issue(id, tlsgen.IssueOptions{})
		require.NoError(t, err)
		kp, err := tls.X509KeyPair(certPEM, keyPEM)
		require.NoError(t, err)
		return kp
	}
	server := &tls.Config{Certificates: []tls.Certificate{pair("n1")}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	client := &tls.Config{Certificates: []tls.Certificate{pair("n2")}, RootCAs: pool, ServerName: "n1"}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, server)
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	require.NoError(t, tls.Client(b, client).Handshake())
	require.NoError(t, <-done)
	peer := srv.ConnectionState().PeerCertificates
	require.NotEmpty(t, peer)
	require.Equal(t, "n2", peer[0].Subject.CommonName)
	require.NoError(t, peer[0].VerifyHostname("n2"))
	require.Empty(t, certid.Mismatch(srv.ConnectionState(), "n2"), "the client's certificate speaks for n2")
	require.NotEmpty(t, certid.Mismatch(srv.ConnectionState(), "localhost"), "and not for localhost, one of its DNS names")
}

func mode(t testing.TB, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Mode().Perm()
}

func TestWriteFiles(t *testing.T) {
	ca := newCA(t)
	dir := filepath.Join(t.TempDir(), "certs")
	certFile, keyFile, err := ca.IssueFiles(dir, "n1", tlsgen.IssueOptions{}, false)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "n1.pem"), certFile)
	require.Equal(t, filepath.Join(dir, "n1-key.pem"), keyFile)
	require.Equal(t, fs.FileMode(0o644), mode(t, certFile))
	require.Equal(t, fs.FileMode(0o600), mode(t, keyFile))
	require.Equal(t, fs.FileMode(0o700), mode(t, dir))
	_, err = tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	first, err := os.ReadFile(certFile)
	require.NoError(t, err)

	t.Run("refuses to overwrite", func(t *testing.T) {
		_, _, err := ca.IssueFiles(dir, "n1", tlsgen.IssueOptions{}, false)
		require.ErrorIs(t, err, fs.ErrExist)
		var fe *tlsgen.FileError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, certFile, fe.Path)
		require.Contains(t, err.Error(), certFile+": already exists")
		now, err := os.ReadFile(certFile)
		require.NoError(t, err)
		require.Equal(t, first, now, "the existing certificate was changed")
	})
	t.Run("nothing written when only the key exists", func(t *testing.T) {
		key := filepath.Join(dir, "n2-key.pem")
		require.NoError(t, os.WriteFile(key, []byte("old"), 0o644))
		_, _, err := ca.IssueFiles(dir, "n2", tlsgen.IssueOptions{}, false)
		require.ErrorIs(t, err, fs.ErrExist)
		require.Contains(t, err.Error(), key)
		_, err = os.Stat(filepath.Join(dir, "n2.pem"))
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("overwrite", func(t *testing.T) {
		require.NoError(t, os.Chmod(keyFile, 0o644))
		_, _, err := ca.IssueFiles(dir, "n1", tlsgen.IssueOptions{}, true)
		require.NoError(t, err)
		now, err := os.ReadFile(certFile)
		require.NoError(t, err)
		require.NotEqual(t, first, now, "the certificate was not replaced")
		require.Equal(t, fs.FileMode(0o600), mode(t, keyFile), "an overwritten key must be 0600")
		_, err = tls.LoadX509KeyPair(certFile, keyFile)
		require.NoError(t, err)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, e := range entries {
			require.False(t, strings.Contains(e.Name(), ".tmp-"), "temporary file %s left behind", e.Name())
		}
	})
}

func TestLoadCA(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	certFile, keyFile, err := ca.WriteFiles(dir, false)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), mode(t, keyFile))

	loaded, err := tlsgen.LoadCADir(dir)
	require.NoError(t, err)
	require.Equal(t, ca.Cert.Raw, loaded.Cert.Raw)
	certPEM, _, err := loaded.Issue("n3", tlsgen.IssueOptions{})
	require.NoError(t, err)
	require.NoError(t, verify(ca, parseCert(t, certPEM), "n3"), "a certificate of the loaded CA verifies against the original")

	// A SEC 1 key is accepted too.
	keyPEM, err := ca.KeyPEM()
	require.NoError(t, err)
	b, _ := pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	require.NoError(t, err)
	sec1, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
	require.NoError(t, err)
	sec1File := filepath.Join(dir, "sec1.pem")
	require.NoError(t, os.WriteFile(sec1File, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600))
	_, err = tlsgen.LoadCA(certFile, sec1File)
	require.NoError(t, err)

	nodeCert, nodeKey, err := ca.IssueFiles(dir, "n1", tlsgen.IssueOptions{}, false)
	require.NoError(t, err)
	otherDir := t.TempDir()
	_, otherKey, err := newCA(t).WriteFiles(otherDir, false)
	require.NoError(t, err)
	garbage := filepath.Join(dir, "garbage.pem")
	require.NoError(t, os.WriteFile(garbage, []byte("not PEM\n"), 0o600))
	badCert := filepath.Join(dir, "bad-cert.pem")
	require.NoError(t, os.WriteFile(badCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), 0o600))
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name       string
		cert, key  string
		wantErr    error
		wantFile   string
		wantReason string
	}{
		{name: "missing certificate", cert: missing, key: keyFile, wantErr: fs.ErrNotExist, wantFile: missing, wantReason: "no such file"},
		{name: "missing key", cert: certFile, key: missing, wantErr: fs.ErrNotExist, wantFile: missing, wantReason: "no such file"},
		{name: "certificate not PEM", cert: garbage, key: keyFile, wantErr: tlsgen.ErrBadPEM, wantFile: garbage, wantReason: "no PEM CERTIFICATE block"},
		{name: "certificate does not parse", cert: badCert, key: keyFile, wantErr: tlsgen.ErrBadPEM, wantFile: badCert, wantReason: "does not parse"},
		{name: "key not PEM", cert: certFile, key: garbage, wantErr: tlsgen.ErrBadPEM, wantFile: garbage, wantReason: "no PEM PRIVATE KEY"},
		{name: "key is a certificate", cert: certFile, key: certFile, wantErr: tlsgen.ErrBadPEM, wantFile: certFile, wantReason: "no PEM PRIVATE KEY"},
		{name: "node certificate", cert: nodeCert, key: nodeKey, wantErr: tlsgen.ErrNotCA, wantFile: nodeCert, wantReason: `"n1" is not a CA certificate`},
		{name: "another CA's key", cert: certFile, key: otherKey, wantErr: tlsgen.ErrKeyMismatch, wantFile: otherKey, wantReason: "is not the key of the CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tlsgen.LoadCA(tt.cert, tt.key)
			require.ErrorIs(t, err, tt.wantErr)
			var fe *tlsgen.FileError
			require.ErrorAs(t, err, &fe)
			require.Equal(t, tt.wantFile, fe.Path)
			require.Contains(t, err.Error(), tt.wantFile)
			require.Contains(t, err.Error(), tt.wantReason)
		})
	}
}

// TestLoadCAExpired loads a CA certificate whose NotAfter is in the past.
func TestLoadCAExpired(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "old CA"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	require.NoError(t, tlsgen.WriteFiles(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), false))
	_, err = tlsgen.LoadCA(certFile, keyFile)
	require.ErrorIs(t, err, tlsgen.ErrNotCA)
	require.Contains(t, err.Error(), certFile)
	require.Contains(t, err.Error(), `"old CA" expired on`)
}
