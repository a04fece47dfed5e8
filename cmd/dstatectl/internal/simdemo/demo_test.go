package simdemo_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dstate-go/dstate/cmd/dstatectl/internal/simdemo"
)

func TestRunShowsTheWholeStory(t *testing.T) {
	var out bytes.Buffer
	if err := simdemo.Run(&out, 1); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"dstate demo: 5 simulated nodes",
		"== 1. Five nodes start and exchange snapshots ==",
		"== 2. Every node counts",
		"== 3. n3 crashes",
		"stale peers [n3]",
		"n3 (down)",
		" ~",
		"== 4. n3 restarts empty with a new incarnation ==",
		"== Final views ==",
		"OBSERVER  OWNER",
		"n5        n5 (own)",
		"trace hash: 0x",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if got := strings.Count(s, "converged at tick"); got != 4 {
		t.Errorf("%d phases converged, want 4:\n%s", got, s)
	}
	final := s[strings.Index(s, "== Final views =="):]
	if strings.Contains(final, " *") || strings.Contains(final, "(down)") {
		t.Errorf("final views still show a stale or down node:\n%s", final)
	}
	if testing.Verbose() {
		t.Log("\n" + s)
	}
}

func TestRunIsDeterministic(t *testing.T) {
	var a, b, c bytes.Buffer
	for _, run := range []struct {
		buf  *bytes.Buffer
		seed uint64
	}{{&a, 7}, {&b, 7}, {&c, 8}} {
		if err := simdemo.Run(run.buf, run.seed); err != nil {
			t.Fatalf("Run(seed %d): %v", run.seed, err)
		}
	}
	if a.String() != b.String() {
		t.Error("two runs with seed 7 differ")
	}
	if a.String() == c.String() {
		t.Error("seeds 7 and 8 print the same demo")
	}
}

type failingWriter struct{}

var errWrite = errors.New("write failed")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestRunReportsWriteErrors(t *testing.T) {
	if err := simdemo.Run(failingWriter{}, 1); !errors.Is(err, errWrite) {
		t.Fatalf("Run to a failing writer = %v, want %v", err, errWrite)
	}
}
