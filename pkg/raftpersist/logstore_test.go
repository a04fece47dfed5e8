package raftpersist

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A data dir keeps the files of the log store it was made with, private
// (directories 0700, files 0600), and opened with the other store it is
// refused with an error naming both, its files untouched.
func TestLogStoreLayoutAndMismatch(t *testing.T) {
	for _, tc := range []struct{ store, other, file string }{
		{LogStoreBoltDB, LogStoreWAL, "raft.db"},
		{LogStoreWAL, LogStoreBoltDB, "raft-wal"},
	} {
		t.Run(tc.store, func(t *testing.T) {
			c := newCluster(t, 1, withLogStore(tc.store, nil))
			ctx := ctxT(t, 10*time.Second)
			require.NoError(t, stateOf(c.node(0), "s").Save(ctx, obj(1, 1, "v1"), nil))
			dir := c.cfgs[0].DataDir
			c.stop(0)

			_, err := os.Stat(filepath.Join(dir, tc.file))
			require.NoError(t, err, "the %s store's files", tc.store)
			_, err = os.Stat(filepath.Join(dir, logStoreFiles(tc.other)))
			require.ErrorIs(t, err, fs.ErrNotExist, "no %s files", tc.other)
			require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				require.NoError(t, err)
				info, err := d.Info()
				require.NoError(t, err)
				if d.IsDir() {
					if p != filepath.Join(dir, "snapshots") { // raft's snapshot store makes its own
						require.Equal(t, fs.FileMode(0o700), info.Mode().Perm(), p)
					}
				} else if filepath.Dir(p) == dir || filepath.Base(filepath.Dir(p)) == "raft-wal" {
					require.Zero(t, info.Mode().Perm()&0o077, "%s is %04o", p, info.Mode().Perm())
				}
				return nil
			}))

			cfg := c.cfgs[0]
			cfg.LogStore = tc.other
			cfg.Listener = listen(t, c.addr(0))
			_, err = New(cfg)
			require.ErrorIs(t, err, ErrLogStoreMismatch)
			var me *LogStoreMismatchError
			require.True(t, errors.As(err, &me))
			require.Equal(t, LogStoreMismatchError{DataDir: dir, Found: tc.store, Configured: tc.other}, *me)
			require.Contains(t, err.Error(), `"`+tc.store+`"`)
			require.Contains(t, err.Error(), `"`+tc.other+`"`)
			_, err = os.Stat(filepath.Join(dir, logStoreFiles(tc.other)))
			require.ErrorIs(t, err, fs.ErrNotExist, "the refused store created nothing")

			// With its own store it opens and loads the last save.
			s := c.restart(0)
			got, err := stateOf(s, "s").Load(ctx)
			require.NoError(t, err)
			require.Equal(t, "v1", got.Value)
		})
	}
}
