package serfevents

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// File modes.
//
// serf writes two files for a Membership: the snapshot (Config.SnapshotPath)
// and, on every keyring change, the key file (Config.KeyFile). It creates the
// snapshot with mode 0644, rewrites it on compaction through a temporary
// "<snapshot>.compact" created with mode 0755, and rewrites the key file in
// place, keeping whatever mode it had. A Membership keeps both private
// (no group or other permission bits):
//
//   - before serf starts, the snapshot and its compaction file are created
//     with mode 0600, or tightened to it when they exist (serf opens existing
//     files without changing their mode, so the first compaction already
//     yields a 0600 snapshot);
//   - every fileCheckInterval, after each keyring operation this node starts,
//     and once more at Shutdown, a snapshot or compaction file with group or
//     other bits is tightened and a missing compaction file is created 0600
//     again; the key file is tightened once serf has rewritten it.
//
// A key file given with group or other bits is left as it is until serf
// rewrites it: it belongs to the operator (the agent warns about it).

// fileCheckInterval is how often a Membership checks the modes of the files
// serf writes.
var fileCheckInterval = 10 * time.Second

// compactSuffix is what serf appends to the snapshot path for the file it
// writes a compacted snapshot to before renaming it over the snapshot.
const compactSuffix = ".compact"

// privateMask are the permission bits a private file must not have;
// tightening a file keeps only its owner's read and write bits
// (privateBits): the files serf writes are data, never executable.
const (
	privateMask fs.FileMode = 0o077
	privateBits fs.FileMode = 0o600
)

// fileGuard keeps the snapshot and the key file private.
type fileGuard struct {
	log      *slog.Logger
	snapshot string // "" without a snapshot
	keyFile  string // "" without a key file

	mu       sync.Mutex
	keyStamp fileStamp // the key file as read at start
}

// fileStamp identifies one version of a file's contents.
type fileStamp struct {
	size    int64
	modTime time.Time
}

// newFileGuard prepares the snapshot files before serf opens them and
// records the key file's version. It fails when the snapshot cannot be
// created.
func newFileGuard(log *slog.Logger, snapshot, keyFile string) (*fileGuard, error) {
	g := &fileGuard{log: log, snapshot: snapshot, keyFile: keyFile}
	if snapshot != "" {
		for _, p := range []string{snapshot, snapshot + compactSuffix} {
			if err := createPrivate(log, p, true); err != nil {
				return nil, fmt.Errorf("serfevents: snapshot: %w", err)
			}
		}
	}
	if keyFile != "" {
		if st, err := os.Stat(keyFile); err == nil {
			g.keyStamp = fileStamp{size: st.Size(), modTime: st.ModTime()}
		}
	}
	return g, nil
}

// active reports whether there is anything to check.
func (g *fileGuard) active() bool { return g.snapshot != "" || g.keyFile != "" }

// check tightens the snapshot and its compaction file, creates the latter
// again when a compaction renamed it away, and tightens the key file when
// serf has rewritten it. It only logs what fails: the Membership runs on.
func (g *fileGuard) check() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.snapshot != "" {
		if err := tighten(g.log, g.snapshot, "serf snapshot"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			g.log.Warn("cannot make the serf snapshot private", "path", g.snapshot, "err", err)
		}
		if err := createPrivate(g.log, g.snapshot+compactSuffix, false); err != nil {
			g.log.Warn("cannot make the serf snapshot's compaction file private", "path", g.snapshot+compactSuffix, "err", err)
		}
	}
	if g.keyFile != "" {
		st, err := os.Stat(g.keyFile)
		if err != nil || st.Mode().Perm()&privateMask == 0 {
			return
		}
		if (fileStamp{size: st.Size(), modTime: st.ModTime()}) == g.keyStamp {
			return // not rewritten: the operator's file, as given
		}
		if err := tighten(g.log, g.keyFile, "rewritten gossip key file"); err != nil {
			// Warn once per version of the file, not at every check.
			g.keyStamp = fileStamp{size: st.Size(), modTime: st.ModTime()}
			g.log.Warn("cannot make the rewritten gossip key file private", "path", g.keyFile, "err", err)
		}
	}
}

// createPrivate opens path, creating it with mode 0600 when missing, and
// removes group and other bits from an existing one (with a warning when
// warn is set: a file of an earlier run was readable by others).
func createPrivate(log *slog.Logger, path string, warn bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if perm := st.Mode().Perm(); perm&privateMask != 0 {
		if err := f.Chmod(perm & privateBits); err != nil {
			return err
		}
		if warn {
			log.Warn("serf snapshot file was readable by others; made it private",
				"path", path, "was", fmt.Sprintf("%04o", perm), "now", fmt.Sprintf("%04o", perm&privateBits))
		}
	}
	return nil
}

// tighten removes group and other bits from the regular file at path (or
// the one a symbolic link at path leads to: serf writes through it).
func tighten(log *slog.Logger, path, what string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	perm := st.Mode().Perm()
	if !st.Mode().IsRegular() || perm&privateMask == 0 {
		return nil
	}
	if err := os.Chmod(path, perm&privateBits); err != nil {
		return err
	}
	log.Info("made "+what+" private", "path", path, "was", fmt.Sprintf("%04o", perm), "now", fmt.Sprintf("%04o", perm&privateBits))
	return nil
}
