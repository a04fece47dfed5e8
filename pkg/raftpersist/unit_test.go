package raftpersist

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/stretchr/testify/require"
)

// Raft's StableStore contract: a missing key is an error whose text is
// exactly "not found" (raft compares the text). Pin it for the store we use.
func TestStableStoreMissingKeyIsNotFound(t *testing.T) {
	b, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(t.TempDir(), "raft.db")})
	require.NoError(t, err)
	defer b.Close()
	var stable raft.StableStore = b
	_, err = stable.Get([]byte("missing"))
	require.Error(t, err)
	require.Equal(t, "not found", err.Error())
	_, err = stable.GetUint64([]byte("missing"))
	require.Error(t, err)
	require.Equal(t, "not found", err.Error())
	require.NoError(t, stable.SetUint64([]byte("k"), 7))
	v, err := stable.GetUint64([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, uint64(7), v)
}

func sampleEnvs() []*dstate.StoredEnvelope {
	return []*dstate.StoredEnvelope{
		{State: "load", Node: "n1", Generation: dstate.Generation{Incarnation: 1700000000000, Age: 3}, StorageVersion: 2, CreatedUnixMs: 1, ModifiedUnixMs: -5, Data: []byte("hello")},
		{State: "sessions", Node: "n2", Generation: dstate.Generation{Incarnation: 1, Age: 0}, StorageVersion: 1},
	}
}

func TestSaveCommandRoundTripAndTruncation(t *testing.T) {
	envs := sampleEnvs()
	cmd := encodeSaveCommand(envs)
	got, err := decodeSaveCommand(cmd)
	require.NoError(t, err)
	require.Len(t, got, len(envs))
	for i := range envs {
		require.True(t, sameEnvelope(envs[i], got[i]), "envelope %d: got %v, want %v", i, got[i], envs[i])
	}
	for n := 0; n < len(cmd); n++ {
		_, err := decodeSaveCommand(cmd[:n])
		require.ErrorIs(t, err, ErrBadCommand, "prefix of %d bytes", n)
	}
	_, err = decodeSaveCommand(append(bytes.Clone(cmd), 0))
	require.ErrorIs(t, err, ErrBadCommand, "trailing byte")
	bad := bytes.Clone(cmd)
	bad[0] = 9
	_, err = decodeSaveCommand(bad)
	require.ErrorIs(t, err, ErrBadCommand, "unknown version")
}

func FuzzDecodeSaveCommand(f *testing.F) {
	f.Add(encodeSaveCommand(sampleEnvs()))
	f.Add([]byte{1, 1, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		var envs []*dstate.StoredEnvelope
		var err error
		// Each envelope takes at least minEnvelopeSize bytes and decodes to
		// a struct and a pointer: a small multiple of its bytes.
		fuzzcheck.Alloc(t, "decodeSaveCommand", 0, len(b), 16, func() { envs, err = decodeSaveCommand(b) })
		if err != nil {
			return
		}
		again, err := decodeSaveCommand(encodeSaveCommand(envs))
		if err != nil || len(again) != len(envs) {
			t.Fatalf("re-encoding a decoded command failed: %v", err)
		}
	})
}

func applyCmd(f *fsm, idx uint64, envs ...*dstate.StoredEnvelope) *applyResponse {
	return f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: encodeSaveCommand(envs)}).(*applyResponse)
}

func env(state string, node dstate.NodeID, inc, age uint64, data string) *dstate.StoredEnvelope {
	return &dstate.StoredEnvelope{State: state, Node: node, Generation: dstate.Generation{Incarnation: inc, Age: age}, StorageVersion: 1, Data: []byte(data)}
}

func TestFSMFencing(t *testing.T) {
	tests := []struct {
		name       string
		stored     *dstate.StoredEnvelope
		offered    *dstate.StoredEnvelope
		wantFenced bool
		wantData   string
	}{
		{"first save", nil, env("s", "a", 1, 0, "x"), false, "x"},
		{"newer age", env("s", "a", 1, 1, "x"), env("s", "a", 1, 2, "y"), false, "y"},
		{"newer incarnation", env("s", "a", 1, 9, "x"), env("s", "a", 2, 0, "y"), false, "y"},
		{"older age", env("s", "a", 1, 5, "x"), env("s", "a", 1, 4, "y"), true, "x"},
		{"older incarnation", env("s", "a", 2, 0, "x"), env("s", "a", 1, 99, "y"), true, "x"},
		{"same generation other data", env("s", "a", 1, 5, "x"), env("s", "a", 1, 5, "y"), true, "x"},
		{"retried identical save", env("s", "a", 1, 5, "x"), env("s", "a", 1, 5, "x"), false, "x"},
		{"other node is independent", env("s", "b", 9, 9, "x"), env("s", "a", 1, 0, "y"), false, "y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFSM()
			if tc.stored != nil {
				require.Empty(t, applyCmd(f, 1, tc.stored).results[0].fenced)
			}
			res := applyCmd(f, 2, tc.offered)
			require.NoError(t, res.err)
			require.Equal(t, tc.wantFenced, res.results[0].fenced)
			if tc.wantFenced {
				require.Equal(t, tc.stored.Generation, res.results[0].stored)
			}
			got := f.get(tc.offered.State, tc.offered.Node)
			require.Equal(t, tc.wantData, string(got.Data))
			idx, _ := f.appliedIndex()
			require.Equal(t, uint64(2), idx)
		})
	}
}

func TestFSMBatchAppliesInOrderAndRejectsGarbage(t *testing.T) {
	f := newFSM()
	res := applyCmd(f, 1, env("s", "a", 1, 1, "one"), env("s", "a", 1, 2, "two"), env("s", "a", 1, 1, "stale"))
	require.Equal(t, []saveResult{{}, {}, {fenced: true, stored: dstate.Generation{Incarnation: 1, Age: 2}}}, res.results)
	require.Equal(t, "two", string(f.get("s", "a").Data))
	bad := f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: []byte{1, 1, 5}}).(*applyResponse)
	require.ErrorIs(t, bad.err, ErrBadCommand)
	require.Equal(t, "two", string(f.get("s", "a").Data))
}

// memSink is a raft.SnapshotSink over a buffer.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	f := newFSM()
	applyCmd(f, 3, env("s", "a", 1, 1, "a1"), env("s", "b", 2, 0, "b"), env("t", "a", 5, 5, ""))
	snap, err := f.Snapshot()
	require.NoError(t, err)
	applyCmd(f, 4, env("s", "a", 1, 2, "after the snapshot"))
	sink := &memSink{}
	require.NoError(t, snap.Persist(sink))
	snap.Release()
	data := bytes.Clone(sink.Bytes())

	g := newFSM()
	applyCmd(g, 1, env("gone", "x", 1, 1, "discarded by restore"))
	require.NoError(t, g.Restore(io.NopCloser(bytes.NewReader(data))))
	idx, _ := g.appliedIndex()
	require.Equal(t, uint64(3), idx)
	require.Nil(t, g.get("gone", "x"))
	require.Equal(t, "a1", string(g.get("s", "a").Data))
	require.Len(t, g.all("s"), 2)
	require.Len(t, g.all("t"), 1)
	require.Equal(t, int64(1), g.restores.Load())

	for _, n := range []int{0, 3, 5, len(data) - 1} {
		h := newFSM()
		err := h.Restore(io.NopCloser(bytes.NewReader(data[:n])))
		require.ErrorIs(t, err, ErrBadCommand, "snapshot truncated to %d bytes", n)
	}
	err = newFSM().Restore(io.NopCloser(bytes.NewReader(append(bytes.Clone(data), 7))))
	require.ErrorIs(t, err, ErrBadCommand, "trailing byte")
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.NodeID, c.DataDir, c.BindAddr = "n1", "/tmp/x", "127.0.0.1:0"
		return c
	}
	tests := []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"valid", func(*Config) {}, ""},
		{"zero value durations take defaults", func(c *Config) { c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 0, 0, 0 }, ""},
		{"no node id", func(c *Config) { c.NodeID = "" }, "NodeID"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir"},
		{"no address", func(c *Config) { c.BindAddr = "" }, "BindAddr"},
		{"negative timeout", func(c *Config) { c.CommitTimeout = -1 }, "CommitTimeout"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, "LeaderLeaseTimeout"},
		{"election below heartbeat", func(c *Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 }, "ElectionTimeout"},
		{"negative expect", func(c *Config) { c.BootstrapExpect = -1 }, "BootstrapExpect"},
		{"bootstrap without self", func(c *Config) { c.Bootstrap = []Server{{ID: "n2", Address: "127.0.0.1:1"}} }, "Bootstrap"},
		{"bootstrap duplicate", func(c *Config) {
			c.Bootstrap = []Server{{ID: "n1", Address: "127.0.0.1:1"}, {ID: "n1", Address: "127.0.0.1:2"}}
		}, "Bootstrap[1].ID"},
		{"bootstrap bad address", func(c *Config) { c.Bootstrap = []Server{{ID: "n1", Address: "nope"}} }, "Bootstrap[0].Address"},
		{"batch larger than frame", func(c *Config) { c.MaxBatchBytes = c.MaxFrameBytes }, "MaxBatchBytes"},
		{"idle timeout below two heartbeats", func(c *Config) { c.IdleTimeout = c.HeartbeatTimeout }, "IdleTimeout"},
		{"negative idle timeout", func(c *Config) { c.IdleTimeout = -1 }, "IdleTimeout"},
		{"negative connection cap", func(c *Config) { c.MaxConnsPerHost = -1 }, "MaxConnsPerHost"},
		{"wal log store", func(c *Config) { c.LogStore = LogStoreWAL }, ""},
		{"unknown log store", func(c *Config) { c.LogStore = "leveldb" }, "LogStore"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.mod(&c)
			before := c
			err := c.Validate()
			require.Equal(t, before.HeartbeatTimeout, c.HeartbeatTimeout, "Validate must not change the config")
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "got %v, want a *ConfigError", err)
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.Equal(t, tc.field, ce.Field)
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	_, err := New(Config{})
	require.ErrorIs(t, err, ErrInvalidConfig)
}
