package dstate_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/dstate-go/dstate/pkg/dstate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenMessages pins the wire format: one message per kind, with multi-byte
// varints, negative timestamps and non-empty payloads. Each is stored in
// testdata/wire/<name>.hex.
var goldenMessages = []struct {
	name string
	msg  dstate.WireMessage
}{
	{"full_snapshot", dstate.WireMessage{
		Kind: dstate.KindFullSnapshot, State: "counter", Source: "n1",
		Generation:    dstate.Generation{Incarnation: 1_700_000_000_000, Age: 3},
		WireVersion:   1,
		CreatedUnixMs: 1_700_000_000_000, ModifiedUnixMs: 1_700_000_000_123, SentUnixMs: 1_700_000_000_456,
		Data: []byte{0x54, 0x02, 'h', 'i'},
	}},
	{"delta_update", dstate.WireMessage{
		Kind: dstate.KindDeltaUpdate, State: "gauges", Source: "n2",
		Generation:    dstate.Generation{Incarnation: 1_700_000_000_001, Age: 300},
		WireVersion:   2,
		CreatedUnixMs: -5, ModifiedUnixMs: 0, SentUnixMs: 1_700_000_000_999,
		Data: []byte{0x00, 0x03, 'c', 'p', 'u', 0x54},
	}},
	{"request_snapshot", dstate.WireMessage{
		Kind: dstate.KindRequestSnapshot, State: "counter", Source: "n3", SentUnixMs: 1_700_000_000_789,
	}},
	{"batched_change_feed", dstate.WireMessage{
		Kind: dstate.KindBatchedChangeFeed, Source: "n1", SentUnixMs: 1_700_000_001_000,
		Notifications: []dstate.ChangeNotification{
			{State: "counter", Source: "n1", Generation: dstate.Generation{Incarnation: 1_700_000_000_000, Age: 3}},
			{State: "gauges", Source: "n2", Generation: dstate.Generation{Incarnation: 1_700_000_000_001, Age: 300}},
		},
	}},
	{"digest", dstate.WireMessage{
		Kind: dstate.KindDigest, Source: "n2", SentUnixMs: 1_700_000_002_000,
		Notifications: []dstate.ChangeNotification{
			{State: "counter", Source: "n2", Generation: dstate.Generation{Incarnation: 1_700_000_000_000, Age: 3}},
			{State: "gauges", Source: "n2", Generation: dstate.Generation{Incarnation: 1_700_000_000_001, Age: 300}},
		},
	}}, {"snapshot_chunk", dstate.WireMessage{
		Kind: dstate.KindSnapshotChunk, State: "gauges", Source: "n2",
		Generation:    dstate.Generation{Incarnation: 1_700_000_000_001, Age: 300},
		WireVersion:   2,
		CreatedUnixMs: -5, ModifiedUnixMs: 1_700_000_000_123, SentUnixMs: 1_700_000_000_999,
		StreamID: 7, ChunkIndex: 130, ChunkOffset: 1 << 20, ChunkLast: true,
		Data: []byte{0x01, 0x03, 'c', 'p', 'u', 0x54},
	}},
	{"snapshot_pull", dstate.WireMessage{
		Kind: dstate.KindSnapshotPull, State: "gauges", Source: "n1",
		Generation: dstate.Generation{Incarnation: 1_700_000_000_001, Age: 300},
		StreamID:   7, ChunkIndex: 131, SentUnixMs: 1_700_000_001_000,
	}},
}

func goldenPath(name string) string { return filepath.Join("testdata", "wire", name+".hex") }

// formatGolden renders an encoding as a comment line with the message's
// String() and 16 space-separated hex bytes per line.
func formatGolden(m *dstate.WireMessage, b []byte) []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, "# %s\n", m.String())
	for i := 0; i < len(b); i += 16 {
		line := b[i:min(i+16, len(b))]
		for j, c := range line {
			if j > 0 {
				out.WriteByte(' ')
			}
			fmt.Fprintf(&out, "%02x", c)
		}
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// parseGolden returns the comment (without "# ") and the bytes of a golden
// file.
func parseGolden(tb testing.TB, text []byte) (comment string, data []byte) {
	tb.Helper()
	var hexText strings.Builder
	for line := range strings.Lines(string(text)) {
		line = strings.TrimSpace(line)
		if c, ok := strings.CutPrefix(line, "#"); ok {
			if comment == "" {
				comment = strings.TrimSpace(c)
			}
			continue
		}
		hexText.WriteString(strings.Join(strings.Fields(line), ""))
	}
	data, err := hex.DecodeString(hexText.String())
	if err != nil {
		tb.Fatalf("golden file is not hex: %v", err)
	}
	return comment, data
}

// readGolden returns the bytes of a golden message.
func readGolden(tb testing.TB, name string) []byte {
	tb.Helper()
	text, err := os.ReadFile(goldenPath(name))
	if err != nil {
		tb.Fatalf("read golden %s: %v (run go test -run TestWireGolden -update to create it)", name, err)
	}
	_, data := parseGolden(tb, text)
	return data
}

// equalMessages compares two messages, treating nil and empty Data and
// Notifications as equal.
func equalMessages(a, b dstate.WireMessage) bool {
	if len(a.Data) == 0 {
		a.Data = nil
	}
	if len(b.Data) == 0 {
		b.Data = nil
	}
	if len(a.Notifications) == 0 {
		a.Notifications = nil
	}
	if len(b.Notifications) == 0 {
		b.Notifications = nil
	}
	return reflect.DeepEqual(a, b)
}

func TestWireGolden(t *testing.T) {
	for _, tc := range goldenMessages {
		t.Run(tc.name, func(t *testing.T) {
			enc := dstate.EncodeWire(&tc.msg)
			want := formatGolden(&tc.msg, enc)
			path := goldenPath(tc.name)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("wrote %s", path)
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden: %v (run with -update to create it)", err)
			}
			comment, data := parseGolden(t, text)
			if comment != tc.msg.String() {
				t.Errorf("golden comment: got %q, want %q", comment, tc.msg.String())
			}
			if !bytes.Equal(data, enc) {
				t.Errorf("encoding changed:\ngot\n%swant (golden)\n%s", formatGolden(&tc.msg, enc), text)
			}
			got, err := dstate.DecodeWire(data)
			if err != nil {
				t.Fatalf("decode golden: %v", err)
			}
			if !equalMessages(got, tc.msg) {
				t.Errorf("decode golden: got %s, want %s", got.String(), tc.msg.String())
			}
		})
	}
}

func TestWireRoundTrip(t *testing.T) {
	large := bytes.Repeat([]byte{0xa5, 0x00, 0xff}, 1<<20/3)
	many := make([]dstate.ChangeNotification, 1000)
	for i := range many {
		many[i] = dstate.ChangeNotification{
			State:      fmt.Sprintf("state-%d", i%7),
			Source:     dstate.NodeID(fmt.Sprintf("node-%d", i)),
			Generation: dstate.Generation{Incarnation: uint64(i) << 40, Age: uint64(i * i)},
		}
	}
	longName := strings.Repeat("x", 1024)
	cases := []struct {
		name string
		msg  dstate.WireMessage
	}{
		{"snapshot/empty payload", dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "s", Source: "n1"}},
		{"snapshot/zero value fields", dstate.WireMessage{Kind: dstate.KindFullSnapshot}},
		{"snapshot/small", dstate.WireMessage{
			Kind: dstate.KindFullSnapshot, State: "kv", Source: "n1", Generation: dstate.Generation{Incarnation: 5, Age: 3},
			WireVersion: 1, CreatedUnixMs: 10, ModifiedUnixMs: 20, SentUnixMs: 30, Data: []byte("hello"),
		}},
		{"snapshot/large payload", dstate.WireMessage{
			Kind: dstate.KindFullSnapshot, State: "kv", Source: "n1", Generation: dstate.Generation{Incarnation: 1, Age: 1},
			Data: large,
		}},
		{"snapshot/extreme integers", dstate.WireMessage{
			Kind: dstate.KindFullSnapshot, State: "kv", Source: "n1",
			Generation:  dstate.Generation{Incarnation: math.MaxUint64, Age: math.MaxUint64},
			WireVersion: math.MaxUint32, CreatedUnixMs: math.MinInt64, ModifiedUnixMs: math.MaxInt64, SentUnixMs: -1,
			Data: []byte{0},
		}},
		{"snapshot/longest names", dstate.WireMessage{
			Kind: dstate.KindFullSnapshot, State: longName, Source: dstate.NodeID(longName), Data: []byte{1},
		}},
		{"snapshot/unicode names", dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "zähler", Source: "nœud-1"}},
		{"delta/negative timestamps", dstate.WireMessage{
			Kind: dstate.KindDeltaUpdate, State: "gauges", Source: "n2", Generation: dstate.Generation{Incarnation: 9, Age: 10},
			WireVersion: 2, CreatedUnixMs: -1_700_000_000_000, ModifiedUnixMs: -1, SentUnixMs: -64, Data: []byte{1, 2, 3},
		}},
		{"delta/empty payload", dstate.WireMessage{Kind: dstate.KindDeltaUpdate, State: "g", Source: "n2", Generation: dstate.Generation{Incarnation: 1, Age: 2}}},
		{"delta/large payload", dstate.WireMessage{Kind: dstate.KindDeltaUpdate, State: "g", Source: "n2", Data: large}},
		{"request/plain", dstate.WireMessage{Kind: dstate.KindRequestSnapshot, State: "kv", Source: "n3", SentUnixMs: 1234}},
		{"request/negative time", dstate.WireMessage{Kind: dstate.KindRequestSnapshot, State: "kv", Source: "n3", SentUnixMs: math.MinInt64}},
		{"request/empty", dstate.WireMessage{Kind: dstate.KindRequestSnapshot}},
		{"feed/no notifications", dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: "n1", SentUnixMs: 7}},
		{"feed/one notification", dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: "n1", SentUnixMs: -7,
			Notifications: []dstate.ChangeNotification{{State: "kv", Source: "n2", Generation: dstate.Generation{Incarnation: 3, Age: 4}}}}},
		{"feed/many notifications", dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: "n1", SentUnixMs: 1, Notifications: many}},
		{"feed/empty notification", dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: "n1",
			Notifications: []dstate.ChangeNotification{{}}}},
	}
	for _, g := range goldenMessages {
		cases = append(cases, struct {
			name string
			msg  dstate.WireMessage
		}{"golden/" + g.name, g.msg})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc := dstate.EncodeWire(&tc.msg)
			if got, want := dstate.EncodedSize(&tc.msg), len(enc); got != want {
				t.Errorf("EncodedSize: got %d, want %d", got, want)
			}
			if cap(enc) != len(enc) {
				t.Errorf("EncodeWire: cap %d, want exactly len %d", cap(enc), len(enc))
			}
			prefix := []byte("prefix")
			appended := dstate.AppendWire(prefix, &tc.msg)
			if !bytes.Equal(appended[:len(prefix)], []byte("prefix")) || !bytes.Equal(appended[len(prefix):], enc) {
				t.Errorf("AppendWire does not append the same bytes as EncodeWire")
			}
			got, err := dstate.DecodeWire(enc)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !equalMessages(got, tc.msg) {
				t.Errorf("round trip: got %s, want %s", got.String(), tc.msg.String())
			}
		})
	}
}

func TestWireStrictPrefixesFail(t *testing.T) {
	for _, g := range goldenMessages {
		t.Run(g.name, func(t *testing.T) {
			b := readGolden(t, g.name)
			for i := range len(b) {
				_, err := dstate.DecodeWire(b[:i])
				if !errors.Is(err, dstate.ErrMalformed) {
					t.Errorf("prefix of %d/%d bytes: got %v, want ErrMalformed", i, len(b), err)
				}
			}
		})
	}
}

func TestWireTrailingBytesFail(t *testing.T) {
	for _, g := range goldenMessages {
		t.Run(g.name, func(t *testing.T) {
			b := append(readGolden(t, g.name), 0)
			_, err := dstate.DecodeWire(b)
			if !errors.Is(err, dstate.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), "trailing") {
				t.Errorf("error %q does not say trailing bytes", err)
			}
		})
	}
}

// header returns a message prefix: protocol version and kind.
func header(kind byte) []byte { return []byte{dstate.ProtocolVersion, kind} }

func TestWireDecodeErrors(t *testing.T) {
	snapshotTo := func(tail ...byte) []byte {
		// state "s", source "n", incarnation 1, age 2, wire 1, created 0,
		// modified 0, sent 0, then tail (payload length and bytes).
		b := append(header(byte(dstate.KindFullSnapshot)), 1, 's', 1, 'n', 1, 2, 1, 0, 0, 0)
		return append(b, tail...)
	}
	overflow := bytes.Repeat([]byte{0xff}, 10)
	overflow = append(overflow, 0x01)
	cases := []struct {
		name    string
		in      []byte
		lim     dstate.DecodeLimits
		kind    error
		mention []string // substrings the error text must contain
	}{
		{"empty", nil, dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"header"}},
		{"one byte", []byte{dstate.ProtocolVersion}, dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"header"}},
		{"unknown kind 0", header(0), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"kind 0"}},
		{"unknown kind 9", append(header(9), 1, 2, 3), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"kind 9"}},
		{"unknown kind 255", header(255), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"kind 255"}},
		{"protocol version 0", []byte{0, 1}, dstate.DecodeLimits{}, dstate.ErrUnknownVersion, []string{"version 0"}},
		{"protocol version 2", []byte{2, byte(dstate.KindFullSnapshot), 0, 0}, dstate.DecodeLimits{}, dstate.ErrUnknownVersion, []string{"protocol version 2"}},
		{"payload over default limit", snapshotTo(0x80, 0x80, 0x80, 0x80, 0x04), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"payload", "limit"}},
		{"payload over custom limit", snapshotTo(5, 1, 2, 3, 4, 5), dstate.DecodeLimits{MaxPayload: 4}, dstate.ErrMalformed, []string{"payload", "limit"}},
		{"payload truncated", snapshotTo(5, 1, 2), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"payload", "truncated"}},
		{"payload length overflow", snapshotTo(overflow...), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"payload", "overflows"}},
		{"state name over limit", append(header(byte(dstate.KindRequestSnapshot)), 5, 'a', 'b', 'c', 'd', 'e', 0, 0), dstate.DecodeLimits{MaxName: 4}, dstate.ErrMalformed, []string{"state name", "limit"}},
		{"source truncated", append(header(byte(dstate.KindRequestSnapshot)), 1, 'a', 9, 'n'), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"requester", "truncated"}},
		{"incarnation overflow", append(append(header(byte(dstate.KindDeltaUpdate)), 0, 0), overflow...), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"incarnation", "overflows"}},
		{"age overflow (11 bytes)", append(append(header(byte(dstate.KindDeltaUpdate)), 0, 0, 1), bytes.Repeat([]byte{0x80}, 11)...), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"age", "overflows"}},
		{"sent time overflow", append(append(header(byte(dstate.KindRequestSnapshot)), 0, 0), overflow...), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"sent time", "overflows"}},
		{"wire version over 32 bits", append(header(byte(dstate.KindFullSnapshot)), 0, 0, 1, 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0, 0, 0), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"wire version", "32 bits"}},
		{"notification count over input", append(header(byte(dstate.KindBatchedChangeFeed)), 0, 0, 0xe8, 0x07, 0, 0, 0, 0), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"notifications", "cannot fit"}},
		{"notification count over limit", append(append(header(byte(dstate.KindBatchedChangeFeed)), 0, 0, 3), bytes.Repeat([]byte{0}, 12)...), dstate.DecodeLimits{MaxNotifications: 2}, dstate.ErrMalformed, []string{"notifications", "limit"}},
		{"notification count overflow", append(append(header(byte(dstate.KindBatchedChangeFeed)), 0, 0), overflow...), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"notification count", "overflows"}},
		{"notification truncated", append(header(byte(dstate.KindBatchedChangeFeed)), 0, 0, 1, 1, 'a', 1, 'n', 1), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"notification age", "truncated"}},
		{"trailing byte", append(header(byte(dstate.KindRequestSnapshot)), 0, 0, 0, 0), dstate.DecodeLimits{}, dstate.ErrMalformed, []string{"1 trailing bytes", "RequestSnapshot"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := dstate.DecodeWireLimits(tc.in, tc.lim)
			if err == nil {
				t.Fatalf("decoded %s, want an error", m.String())
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("got %v, want errors.Is %v", err, tc.kind)
			}
			var de *dstate.DeserializeError
			if !errors.As(err, &de) {
				t.Errorf("got %T, want *DeserializeError", err)
			}
			for _, s := range tc.mention {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
			if !equalMessages(m, dstate.WireMessage{}) {
				t.Errorf("failed decode returned %s, want the zero message", m.String())
			}
		})
	}
}

func TestWireUnknownVersionCarriesVersion(t *testing.T) {
	_, err := dstate.DecodeWire([]byte{7, 1})
	var de *dstate.DeserializeError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want *DeserializeError", err)
	}
	if de.Version != 7 {
		t.Errorf("Version: got %d, want 7", de.Version)
	}
}

// TestWireDecodeDoesNotAllocateDeclaredSizes checks that lengths and counts
// declared by the input are validated before anything is allocated.
func TestWireDecodeDoesNotAllocateDeclaredSizes(t *testing.T) {
	const gib = 1 << 30
	hugePayload := append(header(byte(dstate.KindFullSnapshot)), 0, 0, 0, 0, 0, 0, 0, 0)
	hugePayload = appendUvarint(hugePayload, gib)
	hugeName := appendUvarint(header(byte(dstate.KindRequestSnapshot)), gib)
	hugeName = append(hugeName, 0, 0, 0)
	hugeFeed := appendUvarint(append(header(byte(dstate.KindBatchedChangeFeed)), 0, 0), 1<<20)
	cases := []struct {
		name string
		in   []byte
		lim  dstate.DecodeLimits
	}{
		{"1 GiB payload over the default limit", hugePayload, dstate.DecodeLimits{}},
		{"1 GiB payload within a 2 GiB limit", hugePayload, dstate.DecodeLimits{MaxPayload: 2 * gib}},
		{"1 GiB state name", hugeName, dstate.DecodeLimits{}},
		{"1 GiB state name within limit", hugeName, dstate.DecodeLimits{MaxName: 2 * gib}},
		{"million notifications", hugeFeed, dstate.DecodeLimits{}},
		{"million notifications within limit", hugeFeed, dstate.DecodeLimits{MaxNotifications: 1 << 21}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.in) > 16 {
				t.Fatalf("input of %d bytes, want a tiny one", len(tc.in))
			}
			if _, err := dstate.DecodeWireLimits(tc.in, tc.lim); !errors.Is(err, dstate.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			allocs := testing.AllocsPerRun(100, func() {
				_, _ = dstate.DecodeWireLimits(tc.in, tc.lim)
			})
			// The error value and its formatted detail are all that may be
			// allocated (a few more under the race detector).
			if allocs > 12 {
				t.Errorf("decoding allocated %.0f times, want at most 12", allocs)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range 10 {
				_, _ = dstate.DecodeWireLimits(tc.in, tc.lim)
			}
			runtime.ReadMemStats(&after)
			if perCall := (after.TotalAlloc - before.TotalAlloc) / 10; perCall > 4096 {
				t.Errorf("decoding allocated %d bytes per call, want at most 4096", perCall)
			}
		})
	}
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func TestDecodedDataAliasesInput(t *testing.T) {
	b := readGolden(t, "full_snapshot")
	m, err := dstate.DecodeWire(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Data) == 0 || &m.Data[0] != &b[len(b)-len(m.Data)] {
		t.Errorf("Data does not alias the input buffer")
	}
	if cap(m.Data) != len(m.Data) {
		t.Errorf("Data cap %d, want %d so appends cannot overwrite the input", cap(m.Data), len(m.Data))
	}
}

func TestAppendWireReusesBuffer(t *testing.T) {
	m := goldenMessages[1].msg
	buf := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		buf = dstate.AppendWire(buf[:0], &m)
	})
	if allocs != 0 {
		t.Errorf("AppendWire into a large enough buffer allocated %.0f times, want 0", allocs)
	}
}

func TestMessageStrings(t *testing.T) {
	cases := []struct {
		msg  dstate.WireMessage
		want string
	}{
		{goldenMessages[0].msg, "FullSnapshot(counter from n1 v1700000000000:3 wire=1 4B)"},
		{goldenMessages[1].msg, "DeltaUpdate(gauges from n2 v1700000000001:300 wire=2 6B)"},
		{goldenMessages[2].msg, "RequestSnapshot(counter by n3)"},
		{goldenMessages[3].msg, "BatchedChangeFeed(from n1: counter@n1 v1700000000000:3, gauges@n2 v1700000000001:300)"},
		{dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: "n1"}, "BatchedChangeFeed(from n1:)"},
		{dstate.WireMessage{Kind: 9}, "MessageKind(9)"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.msg.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
