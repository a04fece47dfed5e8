package fuzzcheck

import (
	"strings"
	"testing"
)

var sink []byte

func TestOverNamesAnAllocationPastTheBound(t *testing.T) {
	within := Over(0, 0, 0, func() { sink = make([]byte, 1024) })
	if within != "" {
		t.Fatalf("1 KiB is within the 16 KiB slack, got %q", within)
	}
	over := Over(1024, 10, 2, func() { sink = make([]byte, 4<<20) })
	if !strings.Contains(over, "for 10 input bytes") || !strings.Contains(over, "limit 1024 + 2×input") {
		t.Fatalf("an allocation of 4 MiB must be described, got %q", over)
	}
}

// TestSlackIsProportionalToTheLimit: a decoder bounded by a small limit
// that allocates a few times the limit is caught (the fixed 1 MiB slack
// hid it), and a large limit keeps a slack of an eighth of it.
func TestSlackIsProportionalToTheLimit(t *testing.T) {
	if got := Slack(0); got != MinSlack {
		t.Fatalf("Slack(0) = %d, want %d", got, MinSlack)
	}
	if got := Slack(8 << 20); got != 1<<20 {
		t.Fatalf("Slack(8 MiB) = %d, want 1 MiB", got)
	}
	if over := Over(64<<10, 0, 0, func() { sink = make([]byte, 256<<10) }); over == "" {
		t.Fatal("256 KiB allocated under a 64 KiB limit must be over the bound")
	}
	if over := Over(0, 0, 0, func() { sink = make([]byte, 64<<10) }); over == "" {
		t.Fatal("64 KiB allocated with no limit must be over the bound")
	}
	if over := Over(8<<20, 0, 0, func() { sink = make([]byte, 8<<20+512<<10) }); over != "" {
		t.Fatalf("a limit plus half its slack is within the bound, got %q", over)
	}
}

func TestCorpusFile(t *testing.T) {
	got, err := corpusFile([]any{[]byte("a\x00"), "s", byte('x')})
	if err != nil {
		t.Fatal(err)
	}
	want := "go test fuzz v1\n[]byte(\"a\\x00\")\nstring(\"s\")\nbyte('x')\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := corpusFile([]any{3.5}); err == nil {
		t.Fatal("a float seed must be refused")
	}
}
