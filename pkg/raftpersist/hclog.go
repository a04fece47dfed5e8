package raftpersist

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

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
	return slogbridge.New(l, slogbridge.Options{Name: name, Level: min, Limited: remoteInputMsgs, LimitInterval: every, Expected: closedByStop})
}

// peerStopMsgs are the leader's messages about a follower that cannot be
// reached.
var peerStopMsgs = []string{"failed to heartbeat to", "failed to appendEntries to"}

// closedByStop reports raft's error lines about what a graceful stop or a
// leadership handover causes, logged at Debug: a connection ended because
// this node or the peer stopped (a decode or flush failure on it, or any
// failure because this node's transport shut down), and a leader stepping
// down for a peer's newer term.
func closedByStop(msg string, args []any) bool {
	if msg == "peer has newer term, stopping replication" {
		return true
	}
	for i := 0; i+1 < len(args); i += 2 {
		err, ok := args[i+1].(error)
		if !ok {
			continue
		}
		text := err.Error()
		ownShutdown := errors.Is(err, net.ErrClosed) || errors.Is(err, raft.ErrTransportShutdown) ||
			strings.HasSuffix(text, "use of closed network connection") || strings.HasSuffix(text, "transport shutdown")
		if ownShutdown {
			return true
		}
		// The peer closed the connection: it stopped. If it crashed, the
		// next attempts fail to dial, and those are errors.
		peerClosed := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
		return peerClosed && (slices.Contains(remoteInputMsgs, msg) || slices.Contains(peerStopMsgs, msg))
	}
	return false
}
