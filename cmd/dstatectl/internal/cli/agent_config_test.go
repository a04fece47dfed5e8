package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	ucli "github.com/urfave/cli/v2"

	"github.com/dstate-go/dstate/pkg/agent"
)

// agentSettings parses `dstatectl agent args...` and returns the settings
// the agent would start with.
func agentSettings(t *testing.T, args ...string) (agent.Config, agent.TestHooks, error) {
	t.Helper()
	var (
		cfg   agent.Config
		hooks agent.TestHooks
	)
	cmd := newAgentCommand(func(_ context.Context, c agent.Config, h agent.TestHooks, _ io.Writer) error {
		cfg, hooks = c, h
		return nil
	})
	app := &ucli.App{Name: "dstatectl", Commands: []*ucli.Command{cmd}, Writer: io.Discard, ErrWriter: io.Discard,
		ExitErrHandler: func(*ucli.Context, error) {}}
	err := app.Run(append([]string{"dstatectl", "agent"}, args...))
	return cfg, hooks, err
}

// TestAgentConfigLayers: a flag wins over its DSTATE_* variable, and the
// variable over the config file, which wins over the defaults.
func TestAgentConfigLayers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"node_id": "from-file", "data_dir": "/tmp/from-file", "join": ["127.0.0.1:1"],
		"load_interval": "3s", "fast": true, "bootstrap_expect": 3, "http_allowed_hosts": ["file.example"]}`), 0o600))

	cfg, _, err := agentSettings(t, "--config", path)
	require.NoError(t, err)
	require.Equal(t, "from-file", cfg.NodeID)
	require.Equal(t, []string{"127.0.0.1:1"}, cfg.Join)
	require.Equal(t, agent.Duration(3*time.Second), cfg.LoadInterval)
	require.True(t, cfg.Fast)
	require.True(t, cfg.Server, "a default the file does not name")

	for k, v := range map[string]string{
		"DSTATE_NODE_ID": "from-env", "DSTATE_JOIN": "a:1, b:2", "DSTATE_SERVER": "false", "DSTATE_BOOTSTRAP_EXPECT": "0",
		"DSTATE_LOAD_INTERVAL": "250ms", "DSTATE_HTTP_ALLOWED_HOSTS": "x.example, y.example", "DSTATE_CLUSTER_NAME": "env-cluster",
	} {
		t.Setenv(k, v)
	}
	cfg, _, err = agentSettings(t, "--config", path)
	require.NoError(t, err)
	require.Equal(t, "from-env", cfg.NodeID)
	require.Equal(t, "/tmp/from-file", cfg.DataDir, "the file's value where no variable is set")
	require.Equal(t, []string{"a:1", "b:2"}, cfg.Join)
	require.False(t, cfg.Server)
	require.Zero(t, cfg.BootstrapExpect)
	require.Equal(t, agent.Duration(250*time.Millisecond), cfg.LoadInterval)
	require.Equal(t, []string{"x.example", "y.example"}, cfg.HTTPAllowedHosts)
	require.Equal(t, "env-cluster", cfg.ClusterName)

	cfg, _, err = agentSettings(t, "--config", path, "--node-id", "from-flag", "--join", "c:3", "--load-interval", "2s")
	require.NoError(t, err)
	require.Equal(t, "from-flag", cfg.NodeID)
	require.Equal(t, []string{"c:3"}, cfg.Join)
	require.Equal(t, agent.Duration(2*time.Second), cfg.LoadInterval)
	require.False(t, cfg.Server, "the variable where no flag is given")

	t.Setenv("DSTATE_SERVER", "maybe")
	_, _, err = agentSettings(t, "--config", path)
	require.ErrorContains(t, err, `could not parse "maybe" as bool value from environment variable "DSTATE_SERVER" for flag server`)
}

// TestAgentTestFlagsSetTestHooks: the hidden --test-* flags set
// agent.TestHooks, not the Config, and no variable sets them.
func TestAgentTestFlagsSetTestHooks(t *testing.T) {
	t.Setenv("DSTATE_TEST_FAULTS", "true")
	_, hooks, err := agentSettings(t, "--data-dir", t.TempDir())
	require.NoError(t, err)
	require.Equal(t, agent.TestHooks{}, hooks)

	_, hooks, err = agentSettings(t, "--data-dir", t.TempDir(), "--test-faults", "--test-fault-drop", "n2",
		"--test-load-rate", "100", "--test-load-for", "1s", "--test-kv-wire-version", "2")
	require.NoError(t, err)
	require.Equal(t, agent.TestHooks{Faults: true, FaultDrop: []string{"n2"}, LoadRate: 100, LoadFor: time.Second, KVWireVersion: 2}, hooks)
}

// TestEveryConfigFieldHasAFlag: each agent.Config field is set by a flag
// (and so by a DSTATE_* variable).
func TestEveryConfigFieldHasAFlag(t *testing.T) {
	flags := map[string]bool{}
	for _, f := range agentFlags() {
		flags[configKey(f.flag.Names()[0])] = true
	}
	ct := reflect.TypeOf(agent.Config{})
	for i := range ct.NumField() {
		key := strings.Split(ct.Field(i).Tag.Get("json"), ",")[0]
		require.True(t, flags[key], "config key %s has no agent flag", key)
	}
}

// TestAgentHelpNamesVariables: the help shows each flag's variable.
func TestAgentHelpNamesVariables(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, Main([]string{"dstatectl", "agent", "--help"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "$DSTATE_NODE_ID")
	require.Contains(t, out.String(), "$DSTATE_CLUSTER_NAME")
	require.NotContains(t, out.String(), "test-faults")
}
