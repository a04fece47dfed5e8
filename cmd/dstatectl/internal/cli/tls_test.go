package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dstate-go/dstate/internal/certid"
)

// timestamps matches the RFC 3339 times tls ca and tls cert print.
var timestamps = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// runIn runs dstatectl with every "$DIR" in args replaced by dir, and in
// the result dir read as $DIR and times as TIME, for golden files.
func runIn(t *testing.T, dir string, args ...string) result {
	t.Helper()
	real := make([]string, len(args))
	for i, a := range args {
		real[i] = strings.ReplaceAll(a, "$DIR", dir)
	}
	r := run(t, real...)
	for _, s := range []*string{&r.stdout, &r.stderr} {
		*s = timestamps.ReplaceAllString(strings.ReplaceAll(*s, dir, "$DIR"), "TIME")
	}
	return r
}

// TestTLSGolden runs tls ca and tls cert in a temporary directory and
// compares their output (directory and times normalized) with
// testdata/out/tls_*.golden.
func TestTLSGolden(t *testing.T) {
	tests := []struct {
		name  string
		setup [][]string // commands run first
		args  []string
	}{
		{name: "tls_ca", args: []string{"tls", "ca", "--out", "$DIR/certs"}},
		{name: "tls_ca_json", args: []string{"--format", "json", "tls", "ca", "--out", "$DIR/certs", "--name", "test CA", "--validity", "30d"}},
		{name: "tls_ca_exists", setup: [][]string{{"tls", "ca", "--out", "$DIR/certs"}}, args: []string{"tls", "ca", "--out", "$DIR/certs"}},
		{name: "tls_cert", setup: [][]string{{"tls", "ca", "--out", "$DIR/certs"}},
			args: []string{"tls", "cert", "--ca-dir", "$DIR/certs", "--node-id", "n1"}},
		{name: "tls_cert_names_json", setup: [][]string{{"tls", "ca", "--out", "$DIR/certs"}},
			args: []string{"--format", "json", "tls", "cert", "--ca-dir", "$DIR/certs", "--node-id", "n2", "--out", "$DIR/n2",
				"--dns", "n2.internal", "--ip", "10.0.0.5", "--ip", "::1", "--validity", "720h"}},
		{name: "tls_cert_exists", setup: [][]string{{"tls", "ca", "--out", "$DIR/certs"}, {"tls", "cert", "--ca-dir", "$DIR/certs", "--node-id", "n1"}},
			args: []string{"tls", "cert", "--ca-dir", "$DIR/certs", "--node-id", "n1"}},
		{name: "tls_cert_no_ca_dir", args: []string{"tls", "cert", "--ca-dir", "$DIR/nosuch", "--node-id", "n1"}},
		{name: "tls_cert_not_a_ca_dir", setup: [][]string{{"tls", "ca", "--out", "$DIR/certs"}},
			args: []string{"tls", "cert", "--ca-dir", "$DIR", "--node-id", "n1"}},
		{name: "tls_cert_bad_node_id", setup: [][]string{{"tls", "ca", "--out", "$DIR/certs"}},
			args: []string{"tls", "cert", "--ca-dir", "$DIR/certs", "--node-id", "../n1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, s := range tt.setup {
				if r := runIn(t, dir, s...); r.code != 0 {
					t.Fatalf("setup %q: exit %d: %s", s, r.code, r.stderr)
				}
			}
			r := runIn(t, dir, tt.args...)
			checkGolden(t, "out/"+tt.name, "$ dstatectl "+strings.Join(tt.args, " ")+"\n"+r.String())
			if tt.args[0] == "--format" && r.stdout != "" && !json.Valid([]byte(r.stdout)) {
				t.Errorf("--format json wrote invalid JSON:\n%s", r.stdout)
			}
		})
	}
}

// TestTLSCertVerifies makes a CA and two node certificates with the
// commands, checks with crypto/x509 that each verifies against the CA for
// its node ID (and not another's), that keys are private, and that the two
// nodes complete a mutual TLS handshake as the agent configures it.
func TestTLSCertVerifies(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	for _, args := range [][]string{
		{"tls", "ca", "--out", certs, "--name", "verify CA"},
		{"tls", "cert", "--ca-dir", certs, "--node-id", "n1"},
		{"tls", "cert", "--ca-dir", certs, "--node-id", "n2", "--dns", "n2.internal", "--ip", "10.1.2.3"},
	} {
		if r := run(t, args...); r.code != 0 {
			t.Fatalf("%q: exit %d: %s", args, r.code, r.stderr)
		}
	}
	for _, name := range []string{"ca-key.pem", "n1-key.pem", "n2-key.pem"} {
		st, err := os.Stat(filepath.Join(certs, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	caPEM, err := os.ReadFile(filepath.Join(certs, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	pair := func(id string) tls.Certificate {
		kp, err := tls.LoadX509KeyPair(filepath.Join(certs, id+".pem"), filepath.Join(certs, id+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	tests := []struct {
		id      string
		names   []string // it verifies for
		notFor  []string
		wantIPs int
	}{
		{id: "n1", names: []string{"n1", "localhost", "127.0.0.1", "::1"}, notFor: []string{"n2", "10.1.2.3"}},
		{id: "n2", names: []string{"n2", "n2.internal", "10.1.2.3"}, notFor: []string{"n1", "localhost", "127.0.0.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			leaf := pair(tt.id).Leaf
			if leaf.Subject.CommonName != tt.id {
				t.Errorf("got CommonName %q, want %q", leaf.Subject.CommonName, tt.id)
			}
			if ids, how := certid.NodeIDs(leaf); !slices.Equal(ids, []string{tt.id}) || how != certid.ByURI {
				t.Errorf("the certificate speaks for %q by %s, want [%q] by URI SAN (URIs %v)", ids, how, tt.id, leaf.URIs)
			}
			for _, other := range tt.names[1:] {
				if certid.Names(leaf, other) {
					t.Errorf("%s's certificate speaks for node ID %q, one of its host names", tt.id, other)
				}
			}
			if time.Until(leaf.NotAfter) < 364*24*time.Hour || time.Until(leaf.NotAfter) > 366*24*time.Hour {
				t.Errorf("got NotAfter %s, want a year from now", leaf.NotAfter)
			}
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				for _, name := range tt.names {
					if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
						t.Errorf("%s's certificate does not verify for %s (usage %v): %v", tt.id, name, usage, err)
					}
				}
			}
			for _, name := range tt.notFor {
				if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err == nil {
					t.Errorf("%s's certificate verifies for %s", tt.id, name)
				}
			}
		})
	}

	// A mutual TLS handshake as pkg/agent configures it: n2 dials n1.
	server := &tls.Config{Certificates: []tls.Certificate{pair("n1")}, ClientCAs: pool, RootCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			err = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
		accepted <- err
	}()
	client := &tls.Config{Certificates: []tls.Certificate{pair("n2")}, RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err != nil {
		t.Fatalf("n2 dialing n1 over mutual TLS: %v", err)
	}
	_ = c.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("n1 accepting n2 over mutual TLS: %v", err)
	}
}

func TestTLSUsageErrors(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs")
	if r := run(t, "tls", "ca", "--out", certs); r.code != 0 {
		t.Fatalf("tls ca: exit %d: %s", r.code, r.stderr)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "tls without subcommand", args: []string{"tls"}, want: "tls: missing command (want one of: ca, cert)"},
		{name: "ca without out", args: []string{"tls", "ca"}, want: "tls ca: --out DIR is required"},
		{name: "ca argument", args: []string{"tls", "ca", "--out", certs, "x"}, want: "tls ca: takes no arguments"},
		{name: "ca bad validity", args: []string{"tls", "ca", "--out", certs, "--validity", "soon"}, want: `tls ca: --validity: "soon" is not a duration`},
		{name: "ca zero validity", args: []string{"tls", "ca", "--out", certs, "--validity", "0d"}, want: `"0d" is not a positive whole number of days`},
		{name: "ca negative validity", args: []string{"tls", "ca", "--out", certs, "--validity", "-1h"}, want: `"-1h" is not positive`},
		{name: "ca huge validity", args: []string{"tls", "ca", "--out", certs, "--validity", "1000y"}, want: `"1000y" is longer than 100 years`},
		{name: "ca empty name", args: []string{"tls", "ca", "--out", certs, "--name", " "}, want: "tls ca: --name must not be empty"},
		{name: "cert without ca-dir", args: []string{"tls", "cert", "--node-id", "n1"}, want: "tls cert: --ca-dir DIR is required"},
		{name: "cert without node-id", args: []string{"tls", "cert", "--ca-dir", certs}, want: "tls cert: --node-id ID is required"},
		{name: "cert bad node-id", args: []string{"tls", "cert", "--ca-dir", certs, "--node-id", "a b"}, want: `tls cert: --node-id: bad node ID: "a b" contains ' '`},
		{name: "cert IP node-id", args: []string{"tls", "cert", "--ca-dir", certs, "--node-id", "10.0.0.1"}, want: `"10.0.0.1" is an IP address`},
		{name: "cert bad ip", args: []string{"tls", "cert", "--ca-dir", certs, "--node-id", "n1", "--ip", "10.0.0"}, want: `tls cert: --ip: "10.0.0" is not an IP address`},
		{name: "cert bad dns", args: []string{"tls", "cert", "--ca-dir", certs, "--node-id", "n1", "--dns", "a..b"}, want: `tls cert: bad DNS name: "a..b" has an empty label`},
		{name: "cert outlives CA", args: []string{"tls", "cert", "--ca-dir", certs, "--node-id", "n1", "--validity", "20y"}, want: "would outlive the CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := run(t, tt.args...)
			if r.code != 2 {
				t.Errorf("got exit %d, want 2", r.code)
			}
			if !strings.HasPrefix(r.stderr, "dstatectl: ") || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("got stderr %q, want it to start with \"dstatectl: \" and contain %q", r.stderr, tt.want)
			}
		})
	}
	entries, err := os.ReadDir(certs)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("got files %q in the CA directory, want ca.pem and ca-key.pem only", names)
	}
}

// TestTLSForce checks --force replaces existing files.
func TestTLSForce(t *testing.T) {
	certs := filepath.Join(t.TempDir(), "certs")
	for _, args := range [][]string{{"tls", "ca", "--out", certs}, {"tls", "cert", "--ca-dir", certs, "--node-id", "n1"}} {
		if r := run(t, args...); r.code != 0 {
			t.Fatalf("%q: exit %d: %s", args, r.code, r.stderr)
		}
	}
	before, err := os.ReadFile(filepath.Join(certs, "n1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if r := run(t, "tls", "cert", "--ca-dir", certs, "--node-id", "n1"); r.code != 1 || !strings.Contains(r.stderr, "pass --force") {
		t.Fatalf("got exit %d, stderr %q; want 1 and a hint at --force", r.code, r.stderr)
	}
	if r := run(t, "tls", "cert", "--ca-dir", certs, "--node-id", "n1", "--force"); r.code != 0 {
		t.Fatalf("--force: exit %d: %s", r.code, r.stderr)
	}
	after, err := os.ReadFile(filepath.Join(certs, "n1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if string(after) == string(before) {
		t.Error("--force did not replace the certificate")
	}
	if r := run(t, "tls", "ca", "--out", certs, "--force"); r.code != 0 {
		t.Fatalf("tls ca --force: exit %d: %s", r.code, r.stderr)
	}
}
