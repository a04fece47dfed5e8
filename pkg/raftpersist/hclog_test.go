package raftpersist

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
)

func TestHCLoggerAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	h := NewHCLogger(l, "raft", slog.LevelInfo)
	h.Debug("dropped below the adapter's level")
	h.Named("snapshot").With("node", "n1").Warn("something odd", "index", 7)
	h.SetLevel(hclog.Trace)
	require.True(t, h.IsTrace())
	h.Trace("now visible")
	h.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[ERR] from a std logger")
	out := buf.String()
	require.NotContains(t, out, "dropped")
	require.Contains(t, out, `level=WARN msg="something odd" logger=raft.snapshot node=n1 index=7`)
	require.Contains(t, out, `msg="now visible"`)
	require.Contains(t, out, `level=ERROR msg="from a std logger"`)
	require.Equal(t, 3, strings.Count(out, "\n"), out)
}
