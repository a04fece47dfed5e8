package fuzzcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// WriteSeedsEnv names the environment variable that, set to 1, makes
// AddSeeds (re)write the seeds as the committed corpus.
const WriteSeedsEnv = "DSTATE_FUZZ_WRITE_SEEDS"

// AddSeeds adds each seed (the arguments of one f.Add call) to f. With
// DSTATE_FUZZ_WRITE_SEEDS=1 it also (re)writes them as the committed corpus
// in testdata/fuzz/<target>/seed-NN. Seed values may be []byte, string or
// byte.
func AddSeeds(f *testing.F, seeds ...[]any) {
	f.Helper()
	write := os.Getenv(WriteSeedsEnv) == "1"
	dir := filepath.Join("testdata", "fuzz", f.Name())
	if write {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	for i, s := range seeds {
		f.Add(s...)
		if !write {
			continue
		}
		file, err := corpusFile(s)
		if err != nil {
			f.Fatalf("seed %d: %v", i, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(file), 0o644); err != nil {
			f.Fatal(err)
		}
	}
}

// AddBytes is AddSeeds for a target whose only argument is []byte.
func AddBytes(f *testing.F, seeds [][]byte) {
	f.Helper()
	args := make([][]any, len(seeds))
	for i, s := range seeds {
		args[i] = []any{s}
	}
	AddSeeds(f, args...)
}

// corpusFile renders one seed in the go test fuzz v1 corpus format.
func corpusFile(args []any) (string, error) {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range args {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		default:
			return "", fmt.Errorf("unsupported seed type %T", v)
		}
	}
	return b.String(), nil
}

// MinSlack is the least allocation every check allows on top of its bound,
// for a decoder's fixed costs (buffers, maps, error values).
const MinSlack = 16 << 10

// Slack returns the allocation a check of a decoder bounded by limit
// allows on top of the bound: max(MinSlack, limit/8). It grows with the
// limit, so that the slack never hides an allocation of the limit's size,
// and is small enough that a decoder allocating twice its limit fails.
func Slack(limit int) int { return max(MinSlack, limit/8) }

// Over runs fn once and describes how far the heap allocated beyond
// limit + factor×inLen + Slack(limit) bytes meanwhile, or returns "" when
// it stayed within.
func Over(limit, inLen, factor int, fn func()) string {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	slack := Slack(limit)
	bound := uint64(limit) + uint64(inLen)*uint64(factor) + uint64(slack)
	if got := after.TotalAlloc - before.TotalAlloc; got > bound {
		return fmt.Sprintf("allocated %d bytes for %d input bytes (bound %d: limit %d + %d×input + slack %d)",
			got, inLen, bound, limit, factor, slack)
	}
	return ""
}

// Alloc runs fn once and fails t if the heap allocated more than limit +
// factor×inLen + Slack(limit) bytes meanwhile: a few input bytes must never
// make a decoder allocate far beyond its limit. what names the decode in
// the failure.
func Alloc(t testing.TB, what string, limit, inLen, factor int, fn func()) {
	t.Helper()
	if over := Over(limit, inLen, factor, fn); over != "" {
		t.Fatalf("%s %s", what, over)
	}
}
