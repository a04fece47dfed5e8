package agent

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/tlsgen"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// logBuffer collects an agent's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// count returns how many log lines contain every one of parts.
func (b *logBuffer) count(parts ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for line := range strings.Lines(b.buf.String()) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// filesConfig is a one-server loopback config logging warnings.
func filesConfig(t *testing.T, dataDir string) Config {
	c := DefaultConfig()
	c.NodeID, c.DataDir, c.Fast = "solo", dataDir, true
	c.SerfAddr, c.TransportAddr, c.RaftAddr, c.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	c.BootstrapExpect = 1
	c.LogLevel = "warn"
	return c
}

// startLogged starts an agent logging to a buffer; the test stops it.
func startLogged(t *testing.T, cfg Config) (*Agent, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	a, err := Start(context.Background(), cfg, withLogOutput(logs))
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	})
	return a, logs
}

// writeMode writes a file and gives it mode perm whatever the umask.
func writeMode(t *testing.T, path, data string, perm fs.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(data), perm))
	require.NoError(t, os.Chmod(path, perm))
}

func modeOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Mode().Perm()
}

// requirePrivate walks dir and fails on any entry with group or other
// permission bits; it returns the paths it found, relative to dir.
func requirePrivate(t *testing.T, dir, when string) []string {
	t.Helper()
	var found []string
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		found = append(found, rel)
		require.Zero(t, info.Mode().Perm()&0o077, "%s: %s has mode %04o", when, rel, info.Mode().Perm())
		if d.IsDir() {
			require.Equal(t, fs.FileMode(0o700), info.Mode().Perm(), "%s: directory %s", when, rel)
		}
		return nil
	}))
	return found
}

// TestDataDirAndFilesArePrivate: a data dir that exists with mode 0755 and
// holds a 0644 file of an earlier run is made 0700 at start, with one
// warning each; everything the agent, Raft and serf create in it while it
// runs (a durable write, a Raft snapshot, a gossip key rotation) and after
// it stops has no group or other bits, and the rewritten gossip key file
// is 0600.
func TestDataDirAndFilesArePrivate(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Mkdir(dataDir, 0o755))
	require.NoError(t, os.Chmod(dataDir, 0o755))
	writeMode(t, filepath.Join(dataDir, "serf.snapshot"), "", 0o644)
	old, err := serfevents.GenerateKey()
	require.NoError(t, err)
	next, err := serfevents.GenerateKey()
	require.NoError(t, err)
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	writeMode(t, keyFile, old+"\n", 0o600)

	cfg := filesConfig(t, dataDir)
	cfg.GossipKeyFile = keyFile
	a, logs := startLogged(t, cfg)
	require.Equal(t, 1, logs.count("data_dir was open to group or others", "was=0755", "now=0700"), "one warning for the data dir")
	require.Equal(t, 1, logs.count("files in data_dir were open to group or others", "changed=1"), "one warning for the old file")
	requirePrivate(t, dataDir, "after start")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		_, err := a.WriteKV(ctx, DurableKVState, KVChange{Key: "k", Value: "v"})
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "a durable write")
	require.NoError(t, a.raft.store.Snapshot(), "a Raft snapshot")
	// The key file is given 0600 and rewritten by the rotation; make it
	// 0644 first to see that the rewrite makes it private again.
	require.NoError(t, os.Chmod(keyFile, 0o644))
	for _, op := range []struct{ op, key string }{{"install", next}, {"use", next}, {"remove", old}} {
		require.NoError(t, a.KeyringOp(ctx, op.op, op.key), op.op)
	}
	keys, err := serfevents.LoadKeyFile(keyFile)
	require.NoError(t, err)
	require.Equal(t, []string{next}, keys, "serf rewrote the key file")
	require.Equal(t, fs.FileMode(0o600), modeOf(t, keyFile), "the rewritten gossip key file")

	require.NoError(t, a.Stop(ctx))
	found := requirePrivate(t, dataDir, "after stop")
	for _, want := range []string{"states.db", "serf.snapshot", filepath.Join("raft", "raft.db"), filepath.Join("raft", "snapshots")} {
		require.Contains(t, found, want)
	}
	snapshotFiles := 0
	for _, f := range found {
		if strings.HasPrefix(f, filepath.Join("raft", "snapshots")+string(filepath.Separator)) && filepath.Base(f) == "state.bin" {
			snapshotFiles++
		}
	}
	require.Equal(t, 1, snapshotFiles, "the Raft snapshot was checked too: %q", found)
}

// TestLooseSecretFilesAreWarnedAboutOnce: each key or token file readable
// or writable by group or others gets one warning at start that names its
// setting; a private one gets none.
func TestLooseSecretFilesAreWarnedAboutOnce(t *testing.T) {
	dir := t.TempDir()
	ca, err := tlsgen.NewCA("", 0)
	require.NoError(t, err)
	caFile, _, err := ca.WriteFiles(dir, false)
	require.NoError(t, err)
	certFile, keyFile, err := ca.IssueFiles(dir, "solo", tlsgen.IssueOptions{}, false)
	require.NoError(t, err)
	httpCert, httpKey, err := ca.IssueFiles(filepath.Join(dir, "http"), "solo", tlsgen.IssueOptions{}, false)
	require.NoError(t, err)
	gossipKey, err := serfevents.GenerateKey()
	require.NoError(t, err)
	gossipFile, tokenFile := filepath.Join(dir, "gossip.key"), filepath.Join(dir, "token")
	writeMode(t, gossipFile, gossipKey+"\n", 0o640)
	writeMode(t, tokenFile, "s3cret-token\n", 0o604)
	require.NoError(t, os.Chmod(keyFile, 0o644))
	require.NoError(t, os.Chmod(httpKey, 0o620))

	cfg := filesConfig(t, filepath.Join(dir, "data"))
	cfg.Server, cfg.BootstrapExpect = false, 0
	cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSCAFile = certFile, keyFile, caFile
	cfg.HTTPTLSCertFile, cfg.HTTPTLSKeyFile = httpCert, httpKey
	cfg.GossipKeyFile, cfg.AdminTokenFile = gossipFile, tokenFile
	a, logs := startLogged(t, cfg)
	for _, f := range []struct{ setting, path, mode string }{
		{"tls_key_file", keyFile, "0644"}, {"gossip_key_file", gossipFile, "0640"},
		{"admin_token_file", tokenFile, "0604"}, {"http_tls_key_file", httpKey, "0620"},
	} {
		require.Equal(t, 1, logs.count("level=WARN", f.setting+" is readable or writable by group or others", f.setting+"="+f.path, "mode="+f.mode),
			"one warning for %s", f.setting)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, a.Stop(ctx))

	// Private files: no warning.
	for _, f := range []string{keyFile, gossipFile, tokenFile, httpKey} {
		require.NoError(t, os.Chmod(f, 0o600))
	}
	a, logs = startLogged(t, cfg)
	require.Zero(t, logs.count("is readable or writable by group or others"))
	require.NoError(t, a.Stop(ctx))
}
