package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// File permissions.
//
// The data dir holds the node's state and its gossip snapshot; nobody but
// the agent's user needs to read it. At start it is created with mode 0700,
// or made 0700 when it exists with group or other bits (with a warning),
// and everything in it is made private: directories 0700, files 0600 (with
// one warning naming how many had to be changed: files of an earlier run or
// version). The components then create private files: the local store
// (states.db) and the Raft log (raft/raft.db, or raft/raft-wal/ with
// raft_log_store wal: its files made 0600 as they are created) are opened
// 0600, raft/ and raft/raft-wal/ are created 0700, and pkg/serfevents keeps serf.snapshot (and the
// serf.snapshot.compact file serf compacts it through) at 0600. Raft's
// snapshot store creates its directories 0755 and files 0644: they sit in
// the private data dir, and are made private right after the components
// open (raft/snapshots) and again when the agent stops (the snapshots taken
// while it ran).
//
// Key and token files are the operator's: the agent reads them and warns,
// once at start, about each one readable or writable by group or others
// (looseSecretFiles). The gossip key file is rewritten by serf on keyring
// changes; pkg/serfevents then makes it 0600.

const (
	// dataDirMode is the data dir's mode, and that of every directory in it.
	dataDirMode fs.FileMode = 0o700
	// dataFileMode is the mode of every file in the data dir.
	dataFileMode fs.FileMode = 0o600
	// openToOthers are the group and other permission bits.
	openToOthers fs.FileMode = 0o077
)

// prepareDataDir creates dir with mode 0700, or makes an existing one
// 0700 (warning when it was open to others), makes everything in it
// private, and checks that it is writable.
func prepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, dataDirMode); err != nil {
		return fmt.Errorf("agent: data_dir %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("agent: data_dir %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("agent: data_dir %s is not a directory", dir)
	}
	if perm := st.Mode().Perm(); perm != dataDirMode {
		if err := os.Chmod(dir, dataDirMode); err != nil {
			return fmt.Errorf("agent: data_dir %s has mode %04o and cannot be made %04o: %w", dir, perm, dataDirMode, err)
		}
		if perm&openToOthers != 0 {
			log.Warn("data_dir was open to group or others; made it private",
				"data_dir", dir, "was", modeString(perm), "now", modeString(dataDirMode))
		}
	}
	if n := makePrivate(dir, log); n > 0 {
		log.Warn("files in data_dir were open to group or others; made them private (directories 0700, files 0600)",
			"data_dir", dir, "changed", n)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("agent: data_dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return nil
}

// makePrivate removes group and other bits from every directory (to 0700)
// and regular file (to its owner bits, at most 0600) under dir, dir
// excluded, and returns how many it changed. Symbolic links and what they
// lead to are left alone. Entries that vanish meanwhile are skipped; other
// failures are logged and skipped.
func makePrivate(dir string, log *slog.Logger) int {
	changed := 0
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				log.Warn("cannot check a file's mode in data_dir", "path", path, "err", err)
			}
			if d != nil && d.IsDir() && path != dir {
				return fs.SkipDir
			}
			return nil
		}
		if path == dir || !(d.Type().IsRegular() || d.IsDir()) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed since it was listed
		}
		perm := info.Mode().Perm()
		if perm&openToOthers == 0 {
			return nil
		}
		want := dataDirMode
		if !d.IsDir() {
			want = perm & dataFileMode
		}
		if err := os.Chmod(path, want); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				log.Warn("cannot make a file in data_dir private", "path", path, "mode", modeString(perm), "err", err)
			}
			return nil
		}
		changed++
		return nil
	})
	return changed
}

// secretFiles are the settings naming a key or token file, with their
// values in cfg.
func secretFiles(cfg Config) []struct{ setting, path string } {
	return []struct{ setting, path string }{
		{"tls_key_file", cfg.TLSKeyFile},
		{"gossip_key_file", cfg.GossipKeyFile},
		{"admin_token_file", cfg.AdminTokenFile},
		{"http_tls_key_file", cfg.HTTPTLSKeyFile},
	}
}

// warnLooseSecretFiles logs one warning for each key or token file that is
// readable or writable by group or others. A file that cannot be checked
// is left to the code that reads it, which names the error.
func warnLooseSecretFiles(cfg Config, log *slog.Logger) {
	for _, f := range secretFiles(cfg) {
		if f.path == "" {
			continue
		}
		st, err := os.Stat(f.path)
		if err != nil {
			continue
		}
		if perm := st.Mode().Perm(); perm&openToOthers != 0 {
			log.Warn(f.setting+" is readable or writable by group or others; make it private (chmod 600)",
				f.setting, f.path, "mode", modeString(perm))
		}
	}
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", m.Perm()) }
