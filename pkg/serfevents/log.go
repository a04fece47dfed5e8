package serfevents

import (
	"log"
	"log/slog"
	"strings"

	"github.com/dstate-go/dstate/internal/slogbridge"
)

// stdLogger returns the *log.Logger a library (serf, memberlist) writes
// its lines to: each becomes a record of l at the level of its "[WARN]"-
// style prefix (hclog's InferLevels, through the one slog bridge) with a
// "component" attribute naming the library. l's handler filters the levels.
//
// Lines about sockets closed at shutdown are logged at Debug, and
// memberlist's lines about a seed it failed to resolve or join are
// dropped: Join logs each failed round itself, with every seed's error.
func stdLogger(l *slog.Logger, component string) *log.Logger {
	return slogbridge.StdLogger(l.With("component", component), slogbridge.Options{
		Level: slogbridge.LevelTrace, Drop: joinFailureLines, Expected: closedByShutdown,
	})
}

// closedByShutdown reports the lines serf and memberlist log as errors
// when their own sockets close as the node shuts down; they are logged at
// Debug.
func closedByShutdown(msg string, _ []any) bool {
	return strings.HasSuffix(msg, "use of closed network connection")
}

// joinFailureLines are memberlist's messages about one seed of a join.
var joinFailureLines = []string{"memberlist: failed to join ", "memberlist: failed to resolve "}

// discardLogger drops every record.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
