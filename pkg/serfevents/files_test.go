package serfevents_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/serfevents"
)

// modeOf returns the permission bits of path, or 0 when it cannot be read.
func modeOf(path string) fs.FileMode {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Mode().Perm()
}

// writeWithMode writes a file and gives it mode perm whatever the umask.
func writeWithMode(t *testing.T, path, data string, perm fs.FileMode) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(data), perm))
	require.NoError(t, os.Chmod(path, perm))
}

// requirePrivateTree fails when anything under dir has group or other
// permission bits.
func requirePrivateTree(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if path == dir {
			return nil
		}
		info, err := d.Info()
		require.NoError(t, err)
		require.Zero(t, info.Mode().Perm()&0o077, "%s has mode %04o", path, info.Mode().Perm())
		return nil
	}))
}

// TestSnapshotIsPrivateThroughCompaction: a snapshot left with mode 0644 by
// an earlier run is made 0600 before serf opens it, and stays 0600 when
// serf compacts it (serf writes the compacted copy with mode 0755).
func TestSnapshotIsPrivateThroughCompaction(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	cfg := testConfig("n1", dir)
	// Over serf's 128 KiB limit: the first line serf appends (the local
	// node's join) compacts the snapshot.
	const big = 150 << 10
	writeWithMode(t, cfg.SnapshotPath, strings.Repeat("clock: 5\n", big/len("clock: 5\n")), 0o644)

	m := start(t, cfg)
	require.Equal(t, fs.FileMode(0o600), modeOf(cfg.SnapshotPath), "tightened before serf opened it")
	var size int64
	eventually(t, "serf compacts the snapshot", func() bool {
		st, err := os.Stat(cfg.SnapshotPath)
		if err == nil {
			size = st.Size()
		}
		return err == nil && size < big
	})
	require.Equal(t, fs.FileMode(0o600), modeOf(cfg.SnapshotPath), "the compacted snapshot (%d bytes) is private", size)
	require.NoError(t, m.Shutdown())
	requirePrivateTree(t, dir)
}

// TestSnapshotModeIsCheckedWhileRunning: when the snapshot loses its mode
// while serf runs (as after a second compaction), the periodic check
// makes it private again and prepares the next compaction's file.
func TestSnapshotModeIsCheckedWhileRunning(t *testing.T) {
	skipShort(t)
	defer serfevents.SetFileCheckInterval(20 * time.Millisecond)()
	dir := t.TempDir()
	cfg := testConfig("n1", dir)
	m := start(t, cfg)
	require.Equal(t, fs.FileMode(0o600), modeOf(cfg.SnapshotPath))
	require.NoError(t, os.Chmod(cfg.SnapshotPath, 0o755))
	require.NoError(t, os.Remove(cfg.SnapshotPath+".compact"))
	eventually(t, "the snapshot is private again", func() bool {
		return modeOf(cfg.SnapshotPath) == 0o600 && modeOf(cfg.SnapshotPath+".compact") == 0o600
	})
	require.NoError(t, m.Shutdown())
	requirePrivateTree(t, dir)
}

// TestRewrittenKeyFileIsPrivate: serf rewrites every member's key file on a
// keyring change, keeping its mode. A key file given with mode 0644 is left
// so until then (it is the operator's), and made 0600 once rewritten: at
// once on the node that ran the operation, by the periodic check on the
// others.
func TestRewrittenKeyFileIsPrivate(t *testing.T) {
	skipShort(t)
	defer serfevents.SetFileCheckInterval(20 * time.Millisecond)()
	old, next := newKey(t), newKey(t)
	keyDir := t.TempDir()
	keyFiles := map[string]string{}
	c := newCluster(t, func(cfg *serfevents.Config) {
		cfg.KeyFile = filepath.Join(keyDir, string(cfg.NodeID)+".keys")
		writeWithMode(t, cfg.KeyFile, old+"\n", 0o644)
		keyFiles[string(cfg.NodeID)] = cfg.KeyFile
	})
	for id, f := range keyFiles {
		require.Equal(t, fs.FileMode(0o644), modeOf(f), "%s's key file is left as given until serf rewrites it", id)
	}
	_, err := c.ms["n1"].InstallKey(ctxT(t), next)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), modeOf(keyFiles["n1"]), "rewritten by the operation n1 ran")
	for id, f := range keyFiles {
		eventually(t, id+"'s rewritten key file is private", func() bool { return modeOf(f) == 0o600 })
		keys, err := serfevents.LoadKeyFile(f)
		require.NoError(t, err)
		require.Equal(t, []string{old, next}, keys)
	}
	for _, m := range c.ms {
		require.NoError(t, m.Shutdown())
	}
	requirePrivateTree(t, keyDir)
	requirePrivateTree(t, c.dir)
}
