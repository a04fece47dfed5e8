package serfevents

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStdLogger: serf's and memberlist's lines become records at their
// level, with the library as the "component" attribute.
func TestStdLogger(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	stdLogger(l, "memberlist").Print("[WARN] memberlist: Refuting a suspect message (from: n2)\n")
	stdLogger(l, "memberlist").Print("[DEBUG] memberlist: Stream connection from=127.0.0.1:5")
	stdLogger(l, "memberlist").Print("[TRACE] memberlist: below the handler's level")
	stdLogger(l, "serf").Print("[INFO] serf: EventMemberJoin: n1 127.0.0.1")
	stdLogger(l, "serf").Print("[ERR] serf: failed")
	stdLogger(l, "serf").Print("plain text")
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="memberlist: Refuting a suspect message (from: n2)" component=memberlist`,
		`level=DEBUG msg="memberlist: Stream connection from=127.0.0.1:5" component=memberlist`,
		`level=INFO msg="serf: EventMemberJoin: n1 127.0.0.1" component=serf`,
		`level=ERROR msg="serf: failed" component=serf`,
		`level=INFO msg="plain text" component=serf`,
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, "below the handler's level")
}
