package serfevents

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
)

// logBridge turns serf's and memberlist's log lines ("[WARN] memberlist:
// text") into slog records with the level and a "component" attribute.
type logBridge struct{ log *slog.Logger }

var _ io.Writer = logBridge{}

// newStdLogger returns a *log.Logger that writes into l.
func newStdLogger(l *slog.Logger) *log.Logger { return log.New(logBridge{l}, "", 0) }

// Write logs one line (the std logger writes one line per call).
func (b logBridge) Write(p []byte) (int, error) {
	level, component, msg := parseLogLine(string(p))
	ctx := context.Background()
	if b.log.Enabled(ctx, level) {
		b.log.Log(ctx, level, msg, "component", component)
	}
	return len(p), nil
}

// parseLogLine splits "[LEVEL] component: message" into its parts; a line
// without a level is Info, one without a component has component "serf".
func parseLogLine(line string) (slog.Level, string, string) {
	line = strings.TrimSpace(line)
	level := slog.LevelInfo
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 {
			switch line[1:end] {
			case "TRACE", "DEBUG":
				level = slog.LevelDebug
			case "WARN", "WARNING":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			}
			line = strings.TrimSpace(line[end+1:])
		}
	}
	component := "serf"
	if i := strings.Index(line, ": "); i > 0 && !strings.ContainsAny(line[:i], " \t") {
		component, line = line[:i], line[i+2:]
	}
	return level, component, line
}

// discardLogger drops every record.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
