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

// TestHCLoggerLimitsRaftsMessagesAboutRemoteInput: raft logs every
// connection that sends what it cannot decode; the adapter lets one such
// message through per interval and counts the rest.
func TestHCLoggerLimitsRaftsMessagesAboutRemoteInput(t *testing.T) {
	var buf bytes.Buffer
	h := NewHCLogger(slog.New(slog.NewTextHandler(&buf, nil)), "raft", slog.LevelInfo)
	for range 5 {
		h.Named("transport").Error("failed to decode incoming command", "error", "bad input")
		h.Error("something else")
	}
	out := buf.String()
	require.Equal(t, 1, strings.Count(out, "failed to decode incoming command"), out)
	require.Equal(t, 5, strings.Count(out, "something else"), out)
}
