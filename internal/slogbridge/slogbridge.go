package slogbridge

import (
	"context"
	"io"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/dstate-go/dstate/internal/ratelog"
)

// LevelTrace is the slog level of hclog's Trace.
const LevelTrace = slog.LevelDebug - 4

// Options configure a bridge.
type Options struct {
	// Name is the logger's hclog name, logged as the "logger" attribute;
	// Named appends to it ("raft.snapshot"). Empty means no attribute.
	Name string
	// Level is the least level logged, on top of the slog handler's own
	// filter; SetLevel changes it. The zero value is slog.LevelInfo;
	// LevelTrace lets everything through to the handler.
	Level slog.Level
	// Limited are messages let through at most once per LimitInterval
	// each, with the number held back since as a "suppressed" attribute:
	// the messages a remote peer can cause.
	Limited []string
	// LimitInterval is the least time between two Limited messages of one
	// text; zero means ratelog.DefaultInterval.
	LimitInterval time.Duration
	// Drop are prefixes of messages not logged at all: what the caller
	// logs itself, so a line is not logged twice.
	Drop []string
	// Expected, when set, says which messages are logged at Debug whatever
	// their level: those a library logs as errors for what is expected,
	// such as a connection closed because the node is stopping.
	Expected func(msg string, args []any) bool
}

// logger adapts an *slog.Logger to hclog.Logger. Derived loggers (With,
// Named) share the level and the limiter.
type logger struct {
	l       *slog.Logger
	name    string
	implied []any
	min     *atomic.Int64 // hclog.Level
	limited []string
	limit   *ratelog.Limiter
	drop    []string
	expect  func(string, []any) bool
}

var _ hclog.Logger = (*logger)(nil)

// New returns an hclog.Logger that writes to l as configured by o. It is
// safe for concurrent use.
func New(l *slog.Logger, o Options) hclog.Logger {
	lv := &atomic.Int64{}
	lv.Store(int64(FromSlogLevel(o.Level)))
	return &logger{l: l, name: o.Name, min: lv, limited: slices.Clone(o.Limited),
		limit: &ratelog.Limiter{Interval: o.LimitInterval}, drop: slices.Clone(o.Drop), expect: o.Expected}
}

// StdLogger returns a *log.Logger for serf and memberlist that writes to l
// as configured by o: New(l, o).StandardLogger with InferLevels, so a line's
// "[DEBUG]", "[INFO]", "[WARN]", "[ERR]" prefix is its level.
func StdLogger(l *slog.Logger, o Options) *log.Logger {
	return New(l, o).StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
}

// FromSlogLevel returns the hclog level of a slog level: the highest hclog
// level at or below it.
func FromSlogLevel(l slog.Level) hclog.Level {
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

// ToSlogLevel returns the slog level of an hclog level; Trace is LevelTrace
// and NoLevel is Info.
func ToSlogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return LevelTrace
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

func (s *logger) enabled(l hclog.Level) bool {
	return l != hclog.Off && l >= hclog.Level(s.min.Load()) &&
		s.l.Enabled(context.Background(), ToSlogLevel(l))
}

// Log emits msg at level with key/value args.
func (s *logger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	if s.expect != nil && level > hclog.Debug && s.expect(msg, args) {
		level = hclog.Debug
	}
	if !s.enabled(level) || slices.ContainsFunc(s.drop, func(p string) bool { return strings.HasPrefix(msg, p) }) {
		return
	}
	var suppressed uint64
	if slices.Contains(s.limited, msg) {
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
	s.l.Log(context.Background(), ToSlogLevel(level), msg, attrs...)
}

// The hclog level methods log at their level.
func (s *logger) Trace(msg string, args ...any) { s.Log(hclog.Trace, msg, args...) }
func (s *logger) Debug(msg string, args ...any) { s.Log(hclog.Debug, msg, args...) }
func (s *logger) Info(msg string, args ...any)  { s.Log(hclog.Info, msg, args...) }
func (s *logger) Warn(msg string, args ...any)  { s.Log(hclog.Warn, msg, args...) }
func (s *logger) Error(msg string, args ...any) { s.Log(hclog.Error, msg, args...) }
func (s *logger) IsTrace() bool                 { return s.enabled(hclog.Trace) }
func (s *logger) IsDebug() bool                 { return s.enabled(hclog.Debug) }
func (s *logger) IsInfo() bool                  { return s.enabled(hclog.Info) }
func (s *logger) IsWarn() bool                  { return s.enabled(hclog.Warn) }
func (s *logger) IsError() bool                 { return s.enabled(hclog.Error) }
func (s *logger) ImpliedArgs() []any            { return s.implied }
func (s *logger) Name() string                  { return s.name }

// With returns a logger that adds args to every message.
func (s *logger) With(args ...any) hclog.Logger {
	c := *s
	c.implied = append(slices.Clone(s.implied), args...)
	return &c
}

// Named returns a logger whose name is s's name plus "." and name.
func (s *logger) Named(name string) hclog.Logger {
	c := *s
	if s.name != "" {
		c.name = s.name + "." + name
	} else {
		c.name = name
	}
	return &c
}

// ResetNamed returns a logger named name.
func (s *logger) ResetNamed(name string) hclog.Logger {
	c := *s
	c.name = name
	return &c
}

// SetLevel changes the least level of s and of the loggers derived from it.
func (s *logger) SetLevel(level hclog.Level) { s.min.Store(int64(level)) }

// GetLevel returns the least level.
func (s *logger) GetLevel() hclog.Level { return hclog.Level(s.min.Load()) }

// StandardLogger returns a *log.Logger writing through s (StandardWriter).
func (s *logger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(s.StandardWriter(opts), "", 0)
}

// StandardWriter returns a writer whose lines s logs, each classified by
// hclog's standard-logger adapter as opts say (InferLevels: the line's
// "[WARN]"-style prefix is its level; otherwise Info, or opts.ForceLevel).
// The adapter is hclog's own, reached through an intercept logger whose
// output is off and whose one sink is s.
func (s *logger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	if opts == nil {
		opts = &hclog.StandardLoggerOptions{}
	}
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard})
	il.RegisterSink(sink{s})
	return il.StandardWriter(opts)
}

// sink receives what hclog's standard-logger adapter classified.
type sink struct{ s *logger }

// Accept logs one classified line through s.
func (k sink) Accept(_ string, level hclog.Level, msg string, args ...any) {
	k.s.Log(level, msg, args...)
}
