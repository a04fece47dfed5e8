package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/tlsgen"
	"github.com/dstate-go/dstate/pkg/agent"
)

// TestHTTPSAdminAPIWithCAFile: a real agent serves its admin API over
// HTTPS with a token from a file; dstatectl reaches it with --ca-file and
// --token-file, and fails clearly without the CA or with a bad CA file.
func TestHTTPSAdminAPIWithCAFile(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("", 0)
	require.NoError(t, err)
	caFile, _, err := ca.WriteFiles(dir, false)
	require.NoError(t, err)
	certFile, keyFile, err := ca.IssueFiles(dir, "secure", tlsgen.IssueOptions{}, false)
	require.NoError(t, err)
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("tok\n"), 0o600))

	a := startLiveAgent(t, "secure", func(cfg *agent.Config) {
		cfg.AdminTokenFile, cfg.HTTPTLSCertFile, cfg.HTTPTLSKeyFile = tokenFile, certFile, keyFile
	})
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(append([]string{"dstatectl", "--addr", "https://" + a.HTTPAddr(), "--token-file", tokenFile}, args...), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := run("--ca-file", caFile, "members")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "secure")

	code, _, errOut = run("members")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "certificate")

	code, _, errOut = run("--ca-file", tokenFile, "members")
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "--ca-file "+tokenFile+" holds no PEM certificate")
}
