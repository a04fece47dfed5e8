package serfevents

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseLogLine(t *testing.T) {
	tests := []struct {
		line      string
		level     slog.Level
		component string
		msg       string
	}{
		{"[WARN] memberlist: Refuting a suspect message (from: n2)\n", slog.LevelWarn, "memberlist", "Refuting a suspect message (from: n2)"},
		{"[INFO] serf: EventMemberJoin: n1 127.0.0.1", slog.LevelInfo, "serf", "EventMemberJoin: n1 127.0.0.1"},
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:5", slog.LevelDebug, "memberlist", "Stream connection from=127.0.0.1:5"},
		{"[ERR] serf: failed", slog.LevelError, "serf", "failed"},
		{"plain text", slog.LevelInfo, "serf", "plain text"},
		{"[WARN] no component here", slog.LevelWarn, "serf", "no component here"},
	}
	for _, tt := range tests {
		t.Run(tt.msg, func(t *testing.T) {
			level, component, msg := parseLogLine(tt.line)
			require.Equal(t, tt.level, level)
			require.Equal(t, tt.component, component)
			require.Equal(t, tt.msg, msg)
		})
	}
}
