package agent_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
	"github.com/dstate-go/dstate/pkg/raftpersist"
	"github.com/stretchr/testify/require"
)

// A node on raft_log_store=wal keeps its Raft log in data_dir/raft/raft-wal,
// serves durable-kv from it across a restart, and refuses to start on the
// default store with that data dir.
func TestSingleNodeOnWALLogStore(t *testing.T) {
	cfg := testConfig(t, "walnode")
	cfg.RaftLogStore = "wal"
	a, err := agent.Start(context.Background(), cfg)
	require.NoError(t, err)
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}
	eventually(t, "durable-kv ready", func() bool { code, _ := c.call("GET", "/v1/kv/x?state=durable-kv", ""); return code == 200 })
	var w agent.WriteResult
	c.json("PUT", "/v1/kv/color?state=durable-kv", "blue", &w)
	var v agent.KVValue
	c.json("GET", "/v1/kv/color?state=durable-kv", "", &v)
	require.Equal(t, "blue", v.Value)
	_, metrics := c.call("GET", "/metrics", "")
	require.Contains(t, metrics, "dstate_raft_wal_log_appends_total", "raft-wal's metrics reach /metrics")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, a.Stop(ctx))

	require.DirExists(t, filepath.Join(cfg.DataDir, "raft", "raft-wal"))
	_, err = os.Stat(filepath.Join(cfg.DataDir, "raft", "raft.db"))
	require.ErrorIs(t, err, fs.ErrNotExist)

	// The default store refuses the data dir, naming both stores.
	bolt := cfg
	bolt.RaftLogStore = ""
	_, err = agent.Start(context.Background(), bolt)
	require.ErrorIs(t, err, raftpersist.ErrLogStoreMismatch)
	require.ErrorContains(t, err, `"wal"`)
	require.ErrorContains(t, err, `"boltdb"`)

	// Restarted on wal, it loads the last save.
	a = startAgent(t, cfg)
	c = apiClient{t: t, base: "http://" + a.HTTPAddr()}
	eventually(t, "durable-kv loaded", func() bool {
		code, body := c.call("GET", "/v1/kv/color?state=durable-kv", "")
		var got agent.KVValue
		return code == 200 && json.Unmarshal([]byte(body), &got) == nil && got.Found && got.Value == "blue"
	})
}
