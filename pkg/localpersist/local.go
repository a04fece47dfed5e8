package localpersist

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	bolt "go.etcd.io/bbolt"
)

// Sentinel errors, wrapped in a *dstate.PersistError by Save and Load.
var (
	// ErrFenced: a save was rejected because the stored object has a
	// generation at least as new. PersistError.Stored holds it.
	ErrFenced = errors.New("localpersist: fenced by a newer stored generation")
	// ErrCorrupt: a stored record cannot be decoded.
	ErrCorrupt = errors.New("localpersist: corrupt record")
)

// FencedError describes a rejected save. It matches ErrFenced.
type FencedError struct {
	State     string
	Attempted dstate.Generation
	Stored    dstate.Generation
}

// Error describes the rejected save.
func (e *FencedError) Error() string {
	return fmt.Sprintf("%v: state %q: offered %s, stored %s", ErrFenced, e.State, e.Attempted, e.Stored)
}

// Unwrap returns ErrFenced.
func (e *FencedError) Unwrap() error { return ErrFenced }

// Options configures Open. The zero value is valid.
type Options struct {
	// LockTimeout bounds waiting for the file lock held by another process
	// (default 5s).
	LockTimeout time.Duration
}

// DB is one bbolt file holding the last saved object of each state. Safe
// for concurrent use.
type DB struct {
	db *bolt.DB
}

var bucket = []byte("dstate.states.v1")

// Open opens (creating it and its directory if needed) the bbolt file at
// path.
func Open(path string, opts Options) (*DB, error) {
	if path == "" {
		return nil, errors.New("localpersist: open: empty path")
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("localpersist: open %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if err != nil {
		return nil, fmt.Errorf("localpersist: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("localpersist: open %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the file. Saves and loads fail afterwards.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("localpersist: close: %w", err)
	}
	return nil
}

// Path returns the file's path.
func (d *DB) Path() string { return d.db.Path() }

// record is the stored form of one StateObject.
type record struct {
	gen            dstate.Generation
	storageVersion uint32
	created        int64
	modified       int64
	data           []byte
}

const recordVersion byte = 1

func (r *record) encode() []byte {
	b := make([]byte, 0, len(r.data)+40)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, r.gen.Incarnation)
	b = binary.AppendUvarint(b, r.gen.Age)
	b = binary.AppendUvarint(b, uint64(r.storageVersion))
	b = binary.AppendVarint(b, r.created)
	b = binary.AppendVarint(b, r.modified)
	return append(b, r.data...)
}

func decodeRecord(b []byte) (*record, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, fmt.Errorf("%w: unknown record version", ErrCorrupt)
	}
	b = b[1:]
	var r record
	var v uint64
	for i, p := range []*uint64{&r.gen.Incarnation, &r.gen.Age, &v} {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: field %d", ErrCorrupt, i)
		}
		*p, b = x, b[n:]
	}
	if v > 1<<32-1 {
		return nil, fmt.Errorf("%w: storage version %d", ErrCorrupt, v)
	}
	r.storageVersion = uint32(v)
	for i, p := range []*int64{&r.created, &r.modified} {
		x, n := binary.Varint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: timestamp %d", ErrCorrupt, i)
		}
		*p, b = x, b[n:]
	}
	r.data = bytes.Clone(b)
	return &r, nil
}

var _ dstate.EnvelopeStore = (*DB)(nil)

// SaveEnvelope stores env under env.State in one fsynced transaction: a DB
// holds one node's states, so env.Node is not part of the key. A
// generation that is not newer than the stored one (unless the save is
// identical) is rejected: PersistError{Kind: ErrStorageUnavailable, Err:
// *FencedError}. I/O failures are PersistError of kind ErrIO. ctx is
// checked before writing; the write itself is not interruptible.
func (d *DB) SaveEnvelope(ctx context.Context, env dstate.StoredEnvelope) error {
	if err := ctx.Err(); err != nil {
		return &dstate.PersistError{Kind: dstate.ErrStorageUnavailable, Op: "save", Err: err}
	}
	rec := &record{gen: env.Generation, storageVersion: env.StorageVersion, created: env.CreatedUnixMs, modified: env.ModifiedUnixMs, data: env.Data}
	enc := rec.encode()
	var fenced *FencedError
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if cur := b.Get([]byte(env.State)); cur != nil {
			stored, err := decodeRecord(cur)
			if err == nil && !stored.gen.Less(rec.gen) && !bytes.Equal(cur, enc) {
				fenced = &FencedError{State: env.State, Attempted: rec.gen, Stored: stored.gen}
				return nil
			}
			// An unreadable record is overwritten: the host has already
			// started a larger incarnation after failing to load it.
		}
		return b.Put([]byte(env.State), enc)
	})
	switch {
	case err != nil:
		return &dstate.PersistError{Kind: dstate.ErrIO, Op: "save", Err: fmt.Errorf("localpersist: save %q: %w", env.State, err)}
	case fenced != nil:
		return &dstate.PersistError{Kind: dstate.ErrStorageUnavailable, Op: "save", Err: fenced, Stored: fenced.Stored}
	}
	return nil
}

// LoadEnvelope returns the envelope stored under state (node is not part
// of the key; see SaveEnvelope), or (nil, nil). An unreadable record is a
// PersistError of kind ErrDeserializationFailed.
func (d *DB) LoadEnvelope(ctx context.Context, state string, node dstate.NodeID) (*dstate.StoredEnvelope, error) {
	if err := ctx.Err(); err != nil {
		return nil, &dstate.PersistError{Kind: dstate.ErrStorageUnavailable, Op: "load", Err: err}
	}
	var raw []byte
	if err := d.db.View(func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucket).Get([]byte(state)))
		return nil
	}); err != nil {
		return nil, &dstate.PersistError{Kind: dstate.ErrIO, Op: "load", Err: fmt.Errorf("localpersist: load %q: %w", state, err)}
	}
	if raw == nil {
		return nil, nil
	}
	rec, err := decodeRecord(raw)
	if err != nil {
		return nil, &dstate.PersistError{Kind: dstate.ErrDeserializationFailed, Op: "load", Err: fmt.Errorf("localpersist: load %q: %w", state, err)}
	}
	return &dstate.StoredEnvelope{State: state, Node: node, Generation: rec.gen, StorageVersion: rec.storageVersion,
		CreatedUnixMs: rec.created, ModifiedUnixMs: rec.modified, Data: rec.data}, nil
}
