package slogbridge_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/slogbridge"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func textLogger(w *syncBuffer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func TestLogger(t *testing.T) {
	var buf syncBuffer
	h := slogbridge.New(textLogger(&buf, slogbridge.LevelTrace), slogbridge.Options{Name: "raft"})
	h.Debug("dropped below the bridge's level")
	h.Named("snapshot").With("node", "n1").Warn("something odd", "index", 7)
	require.False(t, h.IsDebug())
	h.SetLevel(hclog.Trace)
	require.True(t, h.IsTrace())
	require.Equal(t, hclog.Trace, h.GetLevel())
	h.Trace("now visible")
	h.ResetNamed("other").Log(hclog.NoLevel, "no level is info")
	out := buf.String()
	require.NotContains(t, out, "dropped")
	require.Contains(t, out, `level=WARN msg="something odd" logger=raft.snapshot node=n1 index=7`)
	require.Contains(t, out, `level=DEBUG-4 msg="now visible" logger=raft`)
	require.Contains(t, out, `level=INFO msg="no level is info" logger=other`)
	require.Equal(t, 3, strings.Count(out, "\n"), out)
}

// TestHandlerFilters: the slog handler's level applies too, and IsX says
// so, so a library skips building what would be dropped.
func TestHandlerFilters(t *testing.T) {
	var buf syncBuffer
	h := slogbridge.New(textLogger(&buf, slog.LevelWarn), slogbridge.Options{Level: slogbridge.LevelTrace})
	require.False(t, h.IsInfo())
	require.True(t, h.IsWarn())
	h.Info("dropped by the handler")
	h.Error("kept")
	require.NotContains(t, buf.String(), "dropped")
	require.Contains(t, buf.String(), `level=ERROR msg=kept`)
}

// TestStdLogger: serf's and memberlist's lines are classified by hclog's
// InferLevels; a line without a level is Info.
func TestStdLogger(t *testing.T) {
	var buf syncBuffer
	std := slogbridge.StdLogger(textLogger(&buf, slogbridge.LevelTrace), slogbridge.Options{Name: "serf", Level: slogbridge.LevelTrace})
	std.Print("[WARN] memberlist: Refuting a suspect message (from: n2)\n")
	std.Print("[INFO] serf: EventMemberJoin: n1 127.0.0.1")
	std.Print("[DEBUG] memberlist: Stream connection from=127.0.0.1:5")
	std.Print("[ERR] serf: failed")
	std.Print("[ERROR] serf: failed too")
	std.Print("[TRACE] memberlist: trace")
	std.Print("plain text")
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="memberlist: Refuting a suspect message (from: n2)" logger=serf`,
		`level=INFO msg="serf: EventMemberJoin: n1 127.0.0.1" logger=serf`,
		`level=DEBUG msg="memberlist: Stream connection from=127.0.0.1:5" logger=serf`,
		`level=ERROR msg="serf: failed" logger=serf`,
		`level=ERROR msg="serf: failed too" logger=serf`,
		`level=DEBUG-4 msg="memberlist: trace" logger=serf`,
		`level=INFO msg="plain text" logger=serf`,
	} {
		require.Contains(t, out, want)
	}
	require.Equal(t, 7, strings.Count(out, "\n"), out)

	// The bridge's level applies to the std logger's lines too.
	buf = syncBuffer{}
	std = slogbridge.StdLogger(textLogger(&buf, slogbridge.LevelTrace), slogbridge.Options{})
	std.Print("[DEBUG] memberlist: dropped")
	std.Print("[WARN] memberlist: kept")
	require.NotContains(t, buf.String(), "dropped")
	require.Contains(t, buf.String(), "kept")
}

// TestLimited: a message a remote peer can cause passes once per interval,
// the next one saying how many were held back; other messages all pass.
func TestLimited(t *testing.T) {
	var buf syncBuffer
	h := slogbridge.New(textLogger(&buf, slog.LevelInfo), slogbridge.Options{Name: "raft",
		Limited: []string{"failed to decode incoming command"}, LimitInterval: time.Hour})
	for range 5 {
		h.Named("transport").Error("failed to decode incoming command", "error", "bad input")
		h.Error("something else")
	}
	out := buf.String()
	require.Equal(t, 1, strings.Count(out, "failed to decode incoming command"), out)
	require.Equal(t, 5, strings.Count(out, "something else"), out)

	// Through the std logger as well.
	buf = syncBuffer{}
	std := slogbridge.StdLogger(textLogger(&buf, slog.LevelInfo), slogbridge.Options{Limited: []string{"memberlist: noisy"}, LimitInterval: time.Hour})
	for range 3 {
		std.Print("[ERR] memberlist: noisy")
	}
	require.Equal(t, 1, strings.Count(buf.String(), "noisy"), buf.String())
}

// TestConcurrent: derived loggers and std loggers are used from many
// goroutines at once (run with -race).
func TestConcurrent(t *testing.T) {
	var buf syncBuffer
	h := slogbridge.New(textLogger(&buf, slog.LevelInfo), slogbridge.Options{Name: "raft", Limited: []string{"limited"}})
	std := h.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			l := h.Named("w").With("i", i)
			for range 50 {
				l.Info("info")
				l.Warn("limited")
				std.Print("[WARN] std")
			}
		})
	}
	wg.Go(func() { h.SetLevel(hclog.Warn) })
	wg.Wait()
	require.Equal(t, 1, strings.Count(buf.String(), "limited"))
	require.Equal(t, 200, strings.Count(buf.String(), "msg=std"))
}

// TestDropAndExpected: dropped messages are not logged; expected ones are
// logged at Debug whatever their level.
func TestDropAndExpected(t *testing.T) {
	var buf syncBuffer
	h := slogbridge.New(textLogger(&buf, slogbridge.LevelTrace), slogbridge.Options{
		Level: slogbridge.LevelTrace, Drop: []string{"memberlist: failed to join "},
		Expected: func(msg string, _ []any) bool { return strings.HasSuffix(msg, "closed") },
	})
	h.Warn("memberlist: failed to join 127.0.0.1:1: refused")
	h.Error("socket closed")
	h.Error("disk full")
	out := buf.String()
	require.NotContains(t, out, "failed to join")
	require.Contains(t, out, `level=DEBUG msg="socket closed"`)
	require.Contains(t, out, `level=ERROR msg="disk full"`)
}
