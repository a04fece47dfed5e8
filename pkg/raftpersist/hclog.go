package raftpersist

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dstate-go/dstate/internal/ratelog"
)

// slogLogger adapts an *slog.Logger to hclog.Logger, the logger raft
// takes. Raft's Trace maps to slog.LevelDebug-4. The level filter is the
// adapter's own (min), on top of the slog handler's.
//
// Raft's messages about malformed input from a connection (remoteInputMsgs)
// pass at most once per interval each, with the number held back since, so
// a peer sending garbage cannot flood the log.
type slogLogger struct {
	l       *slog.Logger
	name    string
	implied []any
	min     *atomic.Int64    // hclog.Level, shared by derived loggers
	limit   *ratelog.Limiter // shared by derived loggers
}

// remoteInputMsgs are raft's log messages caused by what a connection sent.
var remoteInputMsgs = map[string]bool{
	"failed to decode incoming command": true,
	"failed to flush response":          true,
}

var _ hclog.Logger = (*slogLogger)(nil)

// NewHCLogger returns an hclog.Logger that writes to l, dropping messages
// below min. Raft, raft-boltdb and other hashicorp libraries log through it.
// Raft's messages about malformed input from a connection pass at most once
// a minute each.
func NewHCLogger(l *slog.Logger, name string, min slog.Level) hclog.Logger {
	return newHCLogger(l, name, min, ratelog.DefaultInterval)
}

// newHCLogger is NewHCLogger with the interval of the messages about
// malformed input.
func newHCLogger(l *slog.Logger, name string, min slog.Level, every time.Duration) hclog.Logger {
	lv := &atomic.Int64{}
	lv.Store(int64(fromSlogLevel(min)))
	return &slogLogger{l: l, name: name, min: lv, limit: &ratelog.Limiter{Interval: every}}
}

func fromSlogLevel(l slog.Level) hclog.Level {
	switch {
	case l < slog.LevelDebug:
		return hclog.Trace
	case l < slog.LevelInfo:
		return hclog.Debug
	case l < slog.LevelWarn:
		return hclog.Info
	case l < slog.LevelError:
		return hclog.Warn
	default:
		return hclog.Error
	}
}

func toSlogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (s *slogLogger) enabled(l hclog.Level) bool {
	return l != hclog.Off && l >= hclog.Level(s.min.Load()) &&
		s.l.Enabled(context.Background(), toSlogLevel(l))
}

// Log emits msg at level with key/value args.
func (s *slogLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	if !s.enabled(level) {
		return
	}
	var suppressed uint64
	if remoteInputMsgs[msg] {
		var ok bool
		if ok, suppressed = s.limit.Allow(msg); !ok {
			return
		}
	}
	attrs := make([]any, 0, len(s.implied)+len(args)+4)
	if suppressed > 0 {
		attrs = append(attrs, "suppressed", suppressed)
	}
	if s.name != "" {
		attrs = append(attrs, "logger", s.name)
	}
	attrs = append(attrs, s.implied...)
	attrs = append(attrs, args...)
	s.l.Log(context.Background(), toSlogLevel(level), msg, attrs...)
}

// The hclog level methods log at their level.
func (s *slogLogger) Trace(msg string, args ...any) { s.Log(hclog.Trace, msg, args...) }
func (s *slogLogger) Debug(msg string, args ...any) { s.Log(hclog.Debug, msg, args...) }
func (s *slogLogger) Info(msg string, args ...any)  { s.Log(hclog.Info, msg, args...) }
func (s *slogLogger) Warn(msg string, args ...any)  { s.Log(hclog.Warn, msg, args...) }
func (s *slogLogger) Error(msg string, args ...any) { s.Log(hclog.Error, msg, args...) }
func (s *slogLogger) IsTrace() bool                 { return s.enabled(hclog.Trace) }
func (s *slogLogger) IsDebug() bool                 { return s.enabled(hclog.Debug) }
func (s *slogLogger) IsInfo() bool                  { return s.enabled(hclog.Info) }
func (s *slogLogger) IsWarn() bool                  { return s.enabled(hclog.Warn) }
func (s *slogLogger) IsError() bool                 { return s.enabled(hclog.Error) }
func (s *slogLogger) ImpliedArgs() []any            { return s.implied }
func (s *slogLogger) Name() string                  { return s.name }

// With returns a logger that adds args to every message.
func (s *slogLogger) With(args ...any) hclog.Logger {
	c := *s
	c.implied = append(append([]any(nil), s.implied...), args...)
	return &c
}

// Named returns a logger whose name is s's name plus "." and name.
func (s *slogLogger) Named(name string) hclog.Logger {
	c := *s
	if s.name != "" {
		c.name = s.name + "." + name
	} else {
		c.name = name
	}
	return &c
}

// ResetNamed returns a logger named name.
func (s *slogLogger) ResetNamed(name string) hclog.Logger {
	c := *s
	c.name = name
	return &c
}

// SetLevel changes the minimum level of s and the loggers derived from it.
func (s *slogLogger) SetLevel(level hclog.Level) { s.min.Store(int64(level)) }

// GetLevel returns the minimum level.
func (s *slogLogger) GetLevel() hclog.Level { return hclog.Level(s.min.Load()) }

// StandardLogger returns a *log.Logger writing through s.
func (s *slogLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(s.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer whose lines are logged at Info, or at the
// level of a "[WARN]"-style prefix when opts.InferLevels is set.
func (s *slogLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	infer := opts != nil && opts.InferLevels
	return writerFunc(func(p []byte) (int, error) {
		line := strings.TrimRight(string(p), "\n")
		level := hclog.Info
		if infer {
			for prefix, l := range map[string]hclog.Level{"[TRACE]": hclog.Trace, "[DEBUG]": hclog.Debug, "[INFO]": hclog.Info, "[WARN]": hclog.Warn, "[ERR]": hclog.Error, "[ERROR]": hclog.Error} {
				if strings.HasPrefix(line, prefix) {
					level, line = l, strings.TrimSpace(strings.TrimPrefix(line, prefix))
					break
				}
			}
		}
		s.Log(level, line)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
