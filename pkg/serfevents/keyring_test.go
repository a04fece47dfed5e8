package serfevents_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

func newKey(t testing.TB) string {
	t.Helper()
	k, err := serfevents.GenerateKey()
	require.NoError(t, err)
	return k
}

func TestParseKeys(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	k2 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	short := base64.StdEncoding.EncodeToString(make([]byte, 10))
	tests := []struct {
		name    string
		data    string
		want    []string
		wantErr string
	}{
		{name: "json list", data: `["` + k1 + `", "` + k2 + `"]`, want: []string{k1, k2}},
		{name: "json with spaces", data: "\n  [\"" + k2 + "\"]\n", want: []string{k2}},
		{name: "one per line", data: "# primary first\n" + k2 + "\n\n  " + k1 + "  \n", want: []string{k2, k1}},
		{name: "duplicates dropped", data: k1 + "\n" + k1 + "\n", want: []string{k1}},
		{name: "empty", data: "# nothing\n\n", wantErr: "no keys"},
		{name: "not base64", data: "!!!\n", wantErr: "key 1"},
		{name: "wrong size", data: k1 + "\n" + short + "\n", wantErr: "key 2"},
		{name: "bad json", data: `["` + k1 + `",`, wantErr: "JSON"},
		{name: "json of numbers", data: `[1, 2]`, wantErr: "JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := serfevents.ParseKeys([]byte(tt.data))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, serfevents.ErrKeyFile)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestLoadKeyFileNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	_, err := serfevents.LoadKeyFile(path)
	require.ErrorIs(t, err, serfevents.ErrKeyFile)
	require.NoError(t, os.WriteFile(path, []byte("nope\n"), 0o600))
	_, err = serfevents.LoadKeyFile(path)
	require.ErrorIs(t, err, serfevents.ErrKeyFile)
	require.ErrorIs(t, err, serfevents.ErrBadKey)
	require.ErrorContains(t, err, path)
}

func TestWrongKeyCannotJoin(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	good, bad := newKey(t), newKey(t)
	cfg := testConfig("n1", dir)
	cfg.Keys = []string{good}
	seed := start(t, cfg)
	require.True(t, seed.Stats().Encrypted)
	addr := seed.LocalNode().Addr

	for _, tc := range []struct {
		name string
		keys []string
	}{
		{"other key", []string{bad}},
		{"no key", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("intruder", dir)
			cfg.SnapshotPath = ""
			cfg.Keys = tc.keys
			m := start(t, cfg)
			ctx, cancel := contextWithTimeout(t, time.Second)
			defer cancel()
			_, err := m.Join(ctx, []string{addr})
			require.ErrorIs(t, err, serfevents.ErrJoin)
			require.ErrorIs(t, err, serfevents.ErrEncryption, "the error says why: %v", err)
			require.ErrorContains(t, err, "encryption key mismatch")
			t.Logf("join error: %v", err)
			require.Len(t, m.Members(), 1)
			require.NoError(t, m.Shutdown())
		})
	}
	require.Len(t, seed.Members(), 1, "the intruders never became members")
}

func TestKeyRotationKeepsTheClusterTogether(t *testing.T) {
	skipShort(t)
	old, next := newKey(t), newKey(t)
	var keyFiles []string
	c := newCluster(t, func(cfg *serfevents.Config) {
		cfg.KeyFile = filepath.Join(filepath.Dir(cfg.SnapshotPath), string(cfg.NodeID)+".keys")
		require.NoError(t, os.WriteFile(cfg.KeyFile, []byte("# gossip key\n"+old+"\n"), 0o600))
		keyFiles = append(keyFiles, cfg.KeyFile)
	})
	m := c.ms["n1"]
	ctx := ctxT(t)
	require.Equal(t, []string{old}, m.LocalKeys())

	// Each step is checked on every node's own keyring before the next
	// one. (This also orders the steps for the race detector: memberlist's
	// Keyring reads its keys without its lock in UseKey and RemoveKey, and
	// successive keyring queries run on different serf goroutines.)
	localKeysAre := func(step string, want ...string) {
		t.Helper()
		for _, id := range ids {
			eventually(t, string(id)+"'s keys after "+step, func() bool {
				return slices.Equal(want, c.ms[id].LocalKeys())
			})
		}
	}
	res, err := m.InstallKey(ctx, next)
	require.NoError(t, err)
	require.Equal(t, 3, res.Members)
	require.Equal(t, 3, res.Responses)
	localKeysAre("install", old, next)
	_, err = m.UseKey(ctx, next)
	require.NoError(t, err)
	localKeysAre("use", next, old)
	_, err = m.RemoveKey(ctx, old)
	require.NoError(t, err)
	localKeysAre("remove", next)

	res, err = m.ListKeys(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int{next: 3}, res.Keys)
	require.Equal(t, map[string]int{next: 3}, res.PrimaryKeys)
	for _, f := range keyFiles {
		keys, err := serfevents.LoadKeyFile(f)
		require.NoError(t, err)
		require.Equal(t, []string{next}, keys, "the key file follows the rotation")
	}

	// Still one cluster: a tag change travels, and nobody failed.
	from := c.recs["n3"].len()
	require.NoError(t, c.ms["n1"].SetTags(ctx, map[string]string{"after": "rotation"}))
	eventually(t, "n3 gets updated(n1)", func() bool { return c.recs["n3"].has(from, dstate.NodeUpdated, "n1") })
	for _, id := range ids {
		for _, ev := range c.recs[id].events() {
			require.NotEqual(t, dstate.NodeFailed, ev.Kind, "no failure during rotation: %v at %s", ev, id)
		}
		require.Equal(t, 3, c.ms[id].Stats().Alive, id)
	}

	// Removing a key in use as primary is refused and says so.
	_, err = c.ms["n2"].RemoveKey(ctx, next)
	require.ErrorIs(t, err, serfevents.ErrKeyOperation)
	require.ErrorContains(t, err, "primary key")
	localKeysAre("refused remove", next)

	// A node with only the new key joins; one with only the old cannot.
	addr := m.LocalNode().Addr
	cfg := testConfig("n4", c.dir)
	cfg.Keys = []string{next}
	n4 := start(t, cfg)
	_, err = n4.Join(ctx, []string{addr})
	require.NoError(t, err)
	cfg = testConfig("n5", c.dir)
	cfg.Keys = []string{old}
	n5 := start(t, cfg)
	short, cancel := contextWithTimeout(t, time.Second)
	defer cancel()
	_, err = n5.Join(short, []string{addr})
	require.ErrorIs(t, err, serfevents.ErrEncryption)
}

func TestKeyringNeedsEncryption(t *testing.T) {
	skipShort(t)
	m := start(t, testConfig("n1", t.TempDir()))
	_, err := m.InstallKey(ctxT(t), newKey(t))
	require.ErrorIs(t, err, serfevents.ErrNoEncryption)
	require.Nil(t, m.LocalKeys())
}
