package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/dstate-go/dstate/internal/certid"
	"github.com/dstate-go/dstate/internal/tokenfile"
)

// resolveAdminToken fills cfg.AdminToken from AdminTokenFile when unset.
func resolveAdminToken(cfg *Config) error {
	if cfg.AdminToken != "" || cfg.AdminTokenFile == "" {
		return nil
	}
	tok, err := tokenfile.Read(cfg.AdminTokenFile)
	if err != nil {
		return fmt.Errorf("agent: admin_token_file %s: %w", cfg.AdminTokenFile, err)
	}
	cfg.AdminToken = tok
	return nil
}

// loadTLS reads the node's mutual-TLS config and checks that the
// certificate names the node ID, which every peer will require.
func loadTLS(cfg Config) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("agent: tls_cert_file/tls_key_file: %w", err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("agent: tls_cert_file %s: %w", cfg.TLSCertFile, err)
	}
	if !certid.Names(leaf, cfg.NodeID) {
		return nil, fmt.Errorf("agent: tls_cert_file %s: %s, not node_id %q: peers would refuse it (issue one with `dstatectl tls cert --node-id %s`)",
			cfg.TLSCertFile, certid.Describe(leaf), cfg.NodeID, cfg.NodeID)
	}
	caPEM, err := os.ReadFile(cfg.TLSCAFile)
	if err != nil {
		return nil, fmt.Errorf("agent: tls_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("agent: tls_ca_file %s holds no PEM certificate", cfg.TLSCAFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}, nil
}

// httpTLS returns the admin API's server TLS config, or nil for plain HTTP.
func httpTLS(cfg Config) (*tls.Config, error) {
	if cfg.HTTPTLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.HTTPTLSCertFile, cfg.HTTPTLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("agent: http_tls_cert_file/http_tls_key_file: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
