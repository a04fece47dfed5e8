package localpersist

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// strDef is a string state named name, sent and stored as its bytes in
// version (at least 1).
type strDef struct {
	name    string
	version uint32
}

func (d strDef) Name() string                       { return d.name }
func (d strDef) WireVersion() uint32                { return d.StorageVersion() }
func (d strDef) StorageVersion() uint32             { return max(d.version, 1) }
func (strDef) EncodeState(s string) ([]byte, error) { return []byte(s), nil }
func (d strDef) DecodeState(b []byte, v uint32) (string, error) {
	if v != d.StorageVersion() {
		return "", dstate.UnknownVersionError(v)
	}
	return string(b), nil
}

// migrating reads version 1 as upper-case version 2.
type migrating struct{ strDef }

func (migrating) MigrateState(b []byte, from uint32) (string, error) {
	if from != 1 {
		return "", dstate.UnknownVersionError(from)
	}
	return "migrated:" + string(b), nil
}

// stateOf is the typed persistence of def's state in db.
func stateOf(db *DB, def dstate.StateCodec[string]) dstate.StatePersistence[string] {
	return dstate.PersistenceFor(db, "n1", def)
}

func obj(inc, age uint64, v string) *dstate.StateObject[string] {
	return &dstate.StateObject[string]{Generation: dstate.Generation{Incarnation: inc, Age: age}, StorageVersion: 1, Value: v, CreatedUnixMs: 10, ModifiedUnixMs: 20}
}

func open(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestSaveLoadSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "state.db")
	db, err := Open(path, Options{})
	require.NoError(t, err)
	p := stateOf(db, strDef{name: "s"})
	got, err := p.Load(ctx)
	require.NoError(t, err)
	require.Nil(t, got, "nothing saved yet")
	require.NoError(t, p.Save(ctx, obj(1, 1, "one"), nil))
	require.NoError(t, p.Save(ctx, obj(1, 2, "two"), nil))
	require.NoError(t, stateOf(db, strDef{name: "other"}).Save(ctx, obj(9, 9, "x"), nil))
	require.NoError(t, db.Close())

	db = open(t, path)
	got, err = stateOf(db, strDef{name: "s"}).Load(ctx)
	require.NoError(t, err)
	require.Equal(t, &dstate.StateObject[string]{Generation: dstate.Generation{Incarnation: 1, Age: 2}, StorageVersion: 1, Value: "two", CreatedUnixMs: 10, ModifiedUnixMs: 20}, got)
}

func TestFencing(t *testing.T) {
	ctx := context.Background()
	p := stateOf(open(t, filepath.Join(t.TempDir(), "db")), strDef{name: "s"})
	require.NoError(t, p.Save(ctx, obj(2, 5, "v"), nil))
	tests := []struct {
		name   string
		obj    *dstate.StateObject[string]
		fenced bool
	}{
		{"older incarnation", obj(1, 99, "x"), true},
		{"older age", obj(2, 4, "x"), true},
		{"same generation other value", obj(2, 5, "x"), true},
		{"identical retry", obj(2, 5, "v"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Save(ctx, tc.obj, nil)
			if !tc.fenced {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrFenced)
			require.ErrorIs(t, err, dstate.ErrStorageUnavailable)
			var pe *dstate.PersistError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, dstate.Generation{Incarnation: 2, Age: 5}, pe.Stored)
		})
	}
	got, err := p.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, "v", got.Value)
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "db"))
	require.NoError(t, stateOf(db, strDef{name: "s"}).Save(ctx, obj(3, 1, "old"), nil))

	t.Run("unknown storage version", func(t *testing.T) {
		_, err := stateOf(db, strDef{name: "s", version: 2}).Load(ctx)
		require.ErrorIs(t, err, dstate.ErrDeserializationFailed)
		require.ErrorIs(t, err, dstate.ErrUnknownVersion)
		var pe *dstate.PersistError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, dstate.Generation{Incarnation: 3, Age: 1}, pe.Stored)
	})
	t.Run("migrated", func(t *testing.T) {
		got, err := stateOf(db, migrating{strDef{name: "s", version: 2}}).Load(ctx)
		require.NoError(t, err)
		require.Equal(t, "migrated:old", got.Value)
	})
	t.Run("corrupt record", func(t *testing.T) {
		require.NoError(t, db.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte("bad"), []byte{1, 0x80}) }))
		_, err := stateOf(db, strDef{name: "bad"}).Load(ctx)
		require.ErrorIs(t, err, dstate.ErrDeserializationFailed)
		require.ErrorIs(t, err, ErrCorrupt)
		// A new incarnation may overwrite it.
		require.NoError(t, stateOf(db, strDef{name: "bad"}).Save(ctx, obj(4, 0, "fresh"), nil))
	})
	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.ErrorIs(t, stateOf(db, strDef{name: "s"}).Save(cctx, obj(9, 9, "x"), nil), dstate.ErrStorageUnavailable)
	})
}

func TestClosedDB(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
	require.NoError(t, err)
	require.NoError(t, db.Close())
	err = stateOf(db, strDef{name: "s"}).Save(context.Background(), obj(1, 1, "x"), nil)
	require.ErrorIs(t, err, dstate.ErrIO)
	_, err = stateOf(db, strDef{name: "s"}).Load(context.Background())
	require.ErrorIs(t, err, dstate.ErrIO)
}

func TestConcurrentStates(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "db"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := stateOf(db, strDef{name: fmt.Sprint("s", i)})
			for age := uint64(1); age <= 20; age++ {
				if err := p.Save(ctx, obj(1, age, fmt.Sprint(age)), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range 8 {
		got, err := stateOf(db, strDef{name: fmt.Sprint("s", i)}).Load(ctx)
		require.NoError(t, err)
		require.Equal(t, "20", got.Value)
	}
}
