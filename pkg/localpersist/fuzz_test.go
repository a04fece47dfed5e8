package localpersist

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// FuzzDecodeStoredEnvelope feeds arbitrary bytes to the stored-record
// decoder, alone and as a record found in the file by LoadEnvelope and
// SaveEnvelope. It asserts that no input panics, that a bad record fails
// with ErrCorrupt (a PersistError of kind ErrDeserializationFailed on
// load) saying what was wrong, and that decoding allocates no more than a
// multiple of the record's length.

func FuzzDecodeStoredEnvelope(f *testing.F) {
	recs := []*record{
		{gen: dstate.Generation{Incarnation: 1700000000000, Age: 3}, storageVersion: 2, created: 1, modified: -5, data: []byte("hello")},
		{gen: dstate.Generation{Incarnation: 1}, storageVersion: 1},
		{gen: dstate.Generation{Incarnation: 1<<64 - 1, Age: 1<<64 - 1}, storageVersion: 1<<32 - 1, created: -1 << 63, modified: 1<<63 - 1, data: bytes.Repeat([]byte{0}, 100)},
	}
	var seeds [][]byte
	for _, r := range recs {
		seeds = append(seeds, r.encode())
	}
	full := recs[0].encode()
	seeds = append(seeds, [][]byte{
		nil,
		{2, 0, 0, 0, 0, 0}, // unknown version
		full[:3],           // truncated
		{1, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0},                         // storage version over uint32
		{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // overlong varint
		{1, 1, 1, 1, 0, 0x80}, // truncated timestamp
	}...)
	fuzzcheck.AddBytes(f, seeds)

	db, err := bolt.Open(filepath.Join(f.TempDir(), "fuzz.db"), 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true})
	if err != nil {
		f.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }); err != nil {
		f.Fatal(err)
	}
	d := &DB{db: db}
	f.Cleanup(func() { _ = d.Close() })
	ctx := context.Background()
	const state = "fz"

	f.Fuzz(func(t *testing.T, in []byte) {
		var rec *record
		var err error
		fuzzcheck.Alloc(t, "decodeRecord", 0, len(in), 2, func() { rec, err = decodeRecord(in) })
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || rec != nil {
				t.Fatalf("decodeRecord: %v (%T), record %v", err, err, rec)
			}
			if _, detail, _ := strings.Cut(err.Error(), ErrCorrupt.Error()); strings.TrimLeft(detail, ": ") == "" {
				t.Fatalf("%q does not say what was wrong", err)
			}
		} else {
			if len(rec.data) > 0 && &rec.data[0] == &in[len(in)-len(rec.data)] {
				t.Fatal("the record's data aliases the input")
			}
			enc := rec.encode()
			if len(enc) > len(in) {
				t.Fatalf("re-encoding takes %d bytes, more than the %d read", len(enc), len(in))
			}
			again, err := decodeRecord(enc)
			if err != nil || again.gen != rec.gen || again.storageVersion != rec.storageVersion ||
				again.created != rec.created || again.modified != rec.modified || !bytes.Equal(again.data, rec.data) {
				t.Fatalf("re-decoding %+v: %+v, %v", rec, again, err)
			}
		}

		// The same bytes found in the file.
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(state), in) }); err != nil {
			t.Fatal(err)
		}
		env, lerr := d.LoadEnvelope(ctx, state, "n1")
		switch {
		case err != nil:
			var pe *dstate.PersistError
			if !errors.As(lerr, &pe) || pe.Kind != dstate.ErrDeserializationFailed || !errors.Is(lerr, ErrCorrupt) ||
				!strings.Contains(lerr.Error(), state) || env != nil {
				t.Fatalf("loading a corrupt record: %v (%T), %v", lerr, lerr, env)
			}
		case len(in) == 0:
			// bolt stores an empty value; it decodes as corrupt above.
			t.Fatal("an empty record decoded")
		default:
			if lerr != nil || env == nil || env.Generation != rec.gen || env.StorageVersion != rec.storageVersion ||
				env.CreatedUnixMs != rec.created || env.ModifiedUnixMs != rec.modified || !bytes.Equal(env.Data, rec.data) {
				t.Fatalf("loading %+v: %+v, %v", rec, env, lerr)
			}
		}

		// A save over it is fenced by a readable newer record and
		// overwrites an unreadable one.
		save := dstate.StoredEnvelope{State: state, Node: "n1", Generation: dstate.Generation{Incarnation: 1 << 40, Age: 1}, StorageVersion: 1, Data: []byte("new")}
		serr := d.SaveEnvelope(ctx, save)
		saveRec := record{gen: save.Generation, storageVersion: save.StorageVersion, data: save.Data}
		fenced := err == nil && !rec.gen.Less(save.Generation) && !bytes.Equal(in, saveRec.encode())
		var fe *FencedError
		if fenced != errors.As(serr, &fe) || (!fenced && serr != nil) {
			t.Fatalf("saving %s over %+v (decode error %v): %v", save.Generation, rec, err, serr)
		}
		if fenced && (fe.Stored != rec.gen || !errors.Is(serr, ErrFenced)) {
			t.Fatalf("fenced by %s, want %s: %v", fe.Stored, rec.gen, serr)
		}
	})
}
