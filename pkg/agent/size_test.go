package agent_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/agent"
)

// TestWriteOverSnapshotLimitIsRefused: a write that would make the kv
// state's snapshot larger than max_snapshot_bytes is refused with 413 and
// a message naming the state, the size and the limit; the state keeps its
// generation and the next write that fits goes through.
func TestWriteOverSnapshotLimitIsRefused(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.MaxSnapshotBytes = 2048
	a := startAgent(t, cfg)
	c := apiClient{t: t, base: "http://" + a.HTTPAddr()}

	var w agent.WriteResult
	c.json("PUT", "/v1/kv/first", strings.Repeat("a", 1200), &w)
	code, body := c.call("PUT", "/v1/kv/second", strings.Repeat("b", 1200))
	require.Equal(t, http.StatusRequestEntityTooLarge, code, body)
	require.Contains(t, body, `dstate: state \"kv\" would encode to`)
	require.Contains(t, body, "over the 2 KiB snapshot limit")

	var v agent.KVValue
	c.json("GET", "/v1/kv/second", "", &v)
	require.False(t, v.Found, "the refused write was undone")
	c.json("GET", "/v1/kv/first", "", &v)
	require.Equal(t, w.Generation, v.Generation, "the generation is the last accepted write's")

	var w2 agent.WriteResult
	c.json("PUT", "/v1/kv/second", "small", &w2)
	require.NotEqual(t, w.Generation, w2.Generation)
}
