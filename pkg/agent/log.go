package agent

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
)

// newLogger builds the agent's logger from LogLevel, RaftLogLevel and
// LogFormat (see logHandler).
func newLogger(cfg Config, w io.Writer) (*slog.Logger, error) {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, &ConfigError{Field: "log_level", Reason: err.Error()}
	}
	raftLevel, err := raftLogLevel(cfg)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: min(level, raftLevel)}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(&logHandler{inner: h, level: level, raftLevel: raftLevel}), nil
}

// raftLogLevel is the least level of raft's own lines: raft_log_level, or
// when unset warn (raft is chatty at info), or log_level when that is
// higher.
func raftLogLevel(cfg Config) (slog.Level, error) {
	if cfg.RaftLogLevel == "" {
		level, err := parseLevel(cfg.LogLevel)
		return max(level, slog.LevelWarn), err
	}
	level, err := parseLevel(cfg.RaftLogLevel)
	if err != nil {
		return 0, &ConfigError{Field: "raft_log_level", Reason: err.Error()}
	}
	return level, nil
}

// logHandler is the agent's slog handler around the text or JSON one:
//
//   - An attribute key appears once per line. The agent, serfevents and
//     raftpersist each add the node and the component to the logger they
//     hand on; the innermost (the most specific: "memberlist" within
//     "serf") wins, at the place the key first appeared.
//   - An attribute a library names like one of the line's own (raft's
//     "time") is renamed with an "_arg" suffix.
//   - raft's lines (those the slog bridge marks with a "logger" attribute
//     naming raft) are logged from raft_log_level, the others from
//     log_level; the inner handler's own level is the lower of the two.
type logHandler struct {
	inner            slog.Handler
	level, raftLevel slog.Level
	attrs            []slog.Attr // added by With, not yet handed to inner
}

// Enabled reports whether a line at level may be logged by anyone.
func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle logs r with its attributes and the logger's, each key once.
func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	attrs := make([]slog.Attr, 0, len(h.attrs)+r.NumAttrs())
	attrs = append(attrs, h.attrs...)
	raft := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "logger" && strings.HasPrefix(a.Value.String(), "raft") {
			raft = true
		}
		if reservedKeys[a.Key] {
			a.Key += "_arg" // raft's "time" would hide the line's own
		}
		attrs = append(attrs, a)
		return true
	})
	least := h.level
	if raft {
		least = h.raftLevel
	}
	if r.Level < least {
		return nil
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(uniqueAttrs(attrs)...)
	return h.inner.Handle(ctx, out)
}

// reservedKeys are the keys of the handler's own attributes.
var reservedKeys = map[string]bool{slog.TimeKey: true, slog.LevelKey: true, slog.MessageKey: true, slog.SourceKey: true}

// uniqueAttrs keeps one attribute per key: the last one's value, at the
// first one's place. Empty keys (an empty group, an Attr{}) are dropped.
func uniqueAttrs(attrs []slog.Attr) []slog.Attr {
	last := make(map[string]int, len(attrs))
	for i, a := range attrs {
		last[a.Key] = i
	}
	out := make([]slog.Attr, 0, len(last))
	seen := make(map[string]bool, len(last))
	for _, a := range attrs {
		if a.Key == "" || seen[a.Key] {
			continue
		}
		seen[a.Key] = true
		out = append(out, attrs[last[a.Key]])
	}
	return out
}

// WithAttrs returns a handler that adds attrs to every line.
func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(slices.Clip(h.attrs), attrs...)
	return &c
}

// WithGroup hands the attributes so far to the inner handler, deduplicated,
// and opens the group there.
func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.inner = h.inner.WithAttrs(uniqueAttrs(h.attrs)).WithGroup(name)
	c.attrs = nil
	return &c
}
