package fuzzcheck

import (
	"strings"
	"testing"
)

var sink []byte

func TestOverNamesAnAllocationPastTheBound(t *testing.T) {
	within := Over(0, 0, 0, func() { sink = make([]byte, 1024) })
	if within != "" {
		t.Fatalf("1 KiB is within the 1 MiB slack, got %q", within)
	}
	over := Over(1024, 10, 2, func() { sink = make([]byte, 4<<20) })
	if !strings.Contains(over, "for 10 input bytes") || !strings.Contains(over, "limit 1024 + 2×input") {
		t.Fatalf("an allocation of 4 MiB must be described, got %q", over)
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
