package raftpersist

import (
	"log/slog"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dstate-go/dstate/internal/ratelog"
	"github.com/dstate-go/dstate/internal/slogbridge"
)

// remoteInputMsgs are raft's log messages caused by what a connection sent:
// each passes at most once per interval, with the number held back since,
// so a peer sending garbage cannot flood the log.
var remoteInputMsgs = []string{
	"failed to decode incoming command",
	"failed to flush response",
}

// NewHCLogger returns an hclog.Logger that writes to l, dropping messages
// below min. Raft, raft-boltdb and other hashicorp libraries log through it.
// Raft's messages about malformed input from a connection pass at most once
// a minute each. It is the project's one slog bridge (internal/slogbridge)
// configured for raft.
func NewHCLogger(l *slog.Logger, name string, min slog.Level) hclog.Logger {
	return newHCLogger(l, name, min, ratelog.DefaultInterval)
}

// newHCLogger is NewHCLogger with the interval of the messages about
// malformed input.
func newHCLogger(l *slog.Logger, name string, min slog.Level, every time.Duration) hclog.Logger {
	return slogbridge.New(l, slogbridge.Options{Name: name, Level: min, Limited: remoteInputMsgs, LimitInterval: every})
}
