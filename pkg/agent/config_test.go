package agent

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func validConfig() Config {
	c := DefaultConfig()
	c.NodeID, c.DataDir = "n1", "/tmp/n1"
	return c
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"valid", func(*Config) {}, ""},
		{"no node id", func(c *Config) { c.NodeID = "" }, "node_id"},
		{"node id with a space", func(c *Config) { c.NodeID = "a b" }, "node_id"},
		{"no cluster", func(c *Config) { c.ClusterName = "" }, "cluster_name"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"bad serf addr", func(c *Config) { c.SerfAddr = "nope" }, "serf_addr"},
		{"bad port", func(c *Config) { c.TransportAddr = "127.0.0.1:99999" }, "transport_addr"},
		{"no raft addr on a server", func(c *Config) { c.RaftAddr = "" }, "raft_addr"},
		{"no raft addr on a client", func(c *Config) { c.RaftAddr, c.Server = "", false }, ""},
		{"bad join", func(c *Config) { c.Join = []string{"127.0.0.1:1", "x"} }, "join[1]"},
		{"public http without token", func(c *Config) { c.HTTPAddr = "0.0.0.0:7380" }, "http_addr"},
		{"public http with token", func(c *Config) { c.HTTPAddr, c.AdminToken = "0.0.0.0:7380", "s3cret" }, ""},
		{"partial tls", func(c *Config) { c.TLSCertFile = "cert.pem" }, "tls_cert_file"},
		{"negative expect", func(c *Config) { c.BootstrapExpect = -1 }, "bootstrap_expect"},
		{"expect on a client", func(c *Config) { c.BootstrapExpect, c.Server = 3, false }, "bootstrap_expect"},
		{"bad log level", func(c *Config) { c.LogLevel = "loud" }, "log_level"},
		{"bad log format", func(c *Config) { c.LogFormat = "xml" }, "log_format"},
		{"negative leave timeout", func(c *Config) { c.LeaveTimeout = Duration(-time.Second) }, "leave_timeout"},
		{"wal log store", func(c *Config) { c.RaftLogStore = "wal" }, ""},
		{"unknown log store", func(c *Config) { c.RaftLogStore = "rocksdb" }, "raft_log_store"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.True(t, errors.As(err, &ce), "got %v, want a *ConfigError", err)
			require.Equal(t, tc.field, ce.Field, "error: %v", err)
		})
	}
}

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"node_id": "from-file", "join": ["127.0.0.1:1"], "load_interval": "3s", "fast": true}`), 0o600))
	c := validConfig()
	require.NoError(t, c.LoadFile(path))
	require.Equal(t, "from-file", c.NodeID)
	require.Equal(t, Duration(3*time.Second), c.LoadInterval)
	require.True(t, c.Fast)

	require.Equal(t, []string{"127.0.0.1:1"}, c.Join)
	require.Equal(t, "dstate", c.ClusterName, "fields the file does not name are kept")

	require.NoError(t, os.WriteFile(path, []byte(`{"test_faults": true}`), 0o600))
	require.ErrorContains(t, c.LoadFile(path), `unknown field "test_faults"`, "test hooks are not config keys")
	require.NoError(t, os.WriteFile(path, []byte(`{"node_idd": "x"}`), 0o600))
	require.ErrorContains(t, c.LoadFile(path), `unknown field "node_idd"`)
	require.ErrorContains(t, c.LoadFile(filepath.Join(dir, "missing.json")), "no such file")
}
