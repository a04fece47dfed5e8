package serfevents

import (
	"log"
	"log/slog"

	"github.com/dstate-go/dstate/internal/slogbridge"
)

// stdLogger returns the *log.Logger a library (serf, memberlist) writes
// its lines to: each becomes a record of l at the level of its "[WARN]"-
// style prefix (hclog's InferLevels, through the one slog bridge) with a
// "component" attribute naming the library. l's handler filters the levels.
func stdLogger(l *slog.Logger, component string) *log.Logger {
	return slogbridge.StdLogger(l.With("component", component), slogbridge.Options{Level: slogbridge.LevelTrace})
}

// discardLogger drops every record.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
