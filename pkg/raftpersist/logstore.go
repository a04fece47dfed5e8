package raftpersist

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	walmetrics "github.com/hashicorp/raft-wal/metrics"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// Log stores: the values of Config.LogStore.
const (
	// LogStoreBoltDB keeps raft's log and stable store in one bbolt file,
	// DataDir/raft.db (hashicorp/raft-boltdb/v2: two fsyncs per append).
	// It is the default.
	LogStoreBoltDB = "boltdb"
	// LogStoreWAL keeps them in a write-ahead log in DataDir/raft-wal/
	// (hashicorp/raft-wal: 64 MiB segment files, one fsync per append, and
	// a small bbolt file, wal-meta.db, for the stable store and the
	// segments' metadata).
	LogStoreWAL = "wal"
)

// The files of each log store in the data dir.
const (
	boltFile = "raft.db"
	walDir   = "raft-wal"
	walMeta  = "wal-meta.db"
)

// ErrLogStoreMismatch: the data dir holds the Raft log of another log store
// than Config.LogStore names. It comes as a *LogStoreMismatchError.
var ErrLogStoreMismatch = errors.New("raftpersist: the data dir holds another log store")

// LogStoreMismatchError says that DataDir holds a Raft log written by the
// Found log store while Config.LogStore is Configured. New refuses to
// start rather than begin an empty log beside the existing one. It matches
// ErrLogStoreMismatch.
type LogStoreMismatchError struct {
	DataDir    string
	Found      string // the log store whose files are in DataDir
	Configured string // Config.LogStore
}

// Error names the data dir, the store its files belong to and the one configured.
func (e *LogStoreMismatchError) Error() string {
	return fmt.Sprintf("raftpersist: data dir %s holds a %q Raft log (%s) but the log store configured is %q: "+
		"configure log store %q to use it, or start %q on another (empty) data dir",
		e.DataDir, e.Found, logStoreFiles(e.Found), e.Configured, e.Found, e.Configured)
}

// Is matches ErrLogStoreMismatch.
func (e *LogStoreMismatchError) Is(target error) bool { return target == ErrLogStoreMismatch }

func logStoreFiles(store string) string {
	if store == LogStoreWAL {
		return walDir + "/"
	}
	return boltFile
}

// logStore is raft's log and stable store, closed by the Store.
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// checkLogStore returns a *LogStoreMismatchError when dir holds the files of
// another log store than want.
func checkLogStore(dir, want string) error {
	exists := func(p string) bool {
		_, err := os.Lstat(filepath.Join(dir, p))
		return err == nil
	}
	found := map[string]bool{LogStoreBoltDB: exists(boltFile), LogStoreWAL: exists(walDir)}
	for _, other := range []string{LogStoreBoltDB, LogStoreWAL} {
		if other != want && found[other] {
			return &LogStoreMismatchError{DataDir: dir, Found: other, Configured: want}
		}
	}
	return nil
}

// openLogStore opens (or creates) the log store cfg.LogStore names in
// cfg.DataDir, which must not hold another one.
func openLogStore(cfg Config, hlog hclog.Logger) (logStore, error) {
	if err := checkLogStore(cfg.DataDir, cfg.LogStore); err != nil {
		return nil, err
	}
	if cfg.LogStore != LogStoreWAL {
		b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, boltFile)})
		if err != nil {
			return nil, fmt.Errorf("raftpersist: open log store %q: %w", LogStoreBoltDB, err)
		}
		return b, nil
	}
	dir := filepath.Join(cfg.DataDir, walDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raftpersist: open log store %q: %w", LogStoreWAL, err)
	}
	// wal.Open leaves its meta store open on Close: the store closes it.
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir,
		wal.WithMetaStore(meta),
		wal.WithLogger(hlog.Named("wal")),
		wal.WithMetricsCollector(walMetrics{}),
		wal.WithSegmentFiler(segment.NewFiler(dir, privateFS{walfs.New()})),
	)
	if err != nil {
		_ = meta.Close()
		return nil, fmt.Errorf("raftpersist: open log store %q in %s: %w", LogStoreWAL, dir, err)
	}
	ws := &walStore{WAL: w, meta: meta}
	// raft-wal creates its meta file 0644; the data dir rule is 0600.
	if err := os.Chmod(filepath.Join(dir, walMeta), 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = ws.Close()
		return nil, fmt.Errorf("raftpersist: open log store %q: %w", LogStoreWAL, err)
	}
	return ws, nil
}

// walStore is a raft-wal WAL whose Close also closes its meta store (and
// so releases wal-meta.db's file lock).
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func (w *walStore) Close() error {
	return errors.Join(w.WAL.Close(), w.meta.Close())
}

// privateFS is raft-wal's file system with the segment files it creates
// made 0600 (it creates them 0644).
type privateFS struct{ *walfs.FS }

func (p privateFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := p.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(filepath.Join(dir, name), 0o600); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// walMetrics reports raft-wal's metrics through go-metrics, as
// raft.wal.NAME (counters such as raft.wal.log_appends and
// raft.wal.log_entries_written, and the raft.wal.last_segment_age_seconds
// gauge): with EnablePrometheusMetrics they are
// dstate_raft_wal_log_appends_total and so on.
type walMetrics struct{}

// walMetricKeys holds the go-metrics key of each metric raft-wal defines.
var walMetricKeys = func() map[string][]string {
	m := map[string][]string{}
	for _, d := range append(append([]walmetrics.Descriptor(nil), wal.MetricDefinitions.Counters...), wal.MetricDefinitions.Gauges...) {
		m[d.Name] = []string{"raft", "wal", d.Name}
	}
	return m
}()

func walKey(name string) []string {
	if k, ok := walMetricKeys[name]; ok {
		return k
	}
	return []string{"raft", "wal", name}
}

func (walMetrics) IncrementCounter(name string, delta uint64) {
	metrics.IncrCounter(walKey(name), float32(delta))
}

func (walMetrics) SetGauge(name string, val uint64) { metrics.SetGauge(walKey(name), float32(val)) }
