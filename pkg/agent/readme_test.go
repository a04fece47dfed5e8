package agent_test

import (
	"os"
	"strings"
	"testing"
)

// exampleForReadme is the README's rendering of an example file: the
// declarations from the line starting with from to the example function,
// then that function's body, one tab less indented, without its
// "// Output:" comment.
func exampleForReadme(t *testing.T, path, from, fn string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	i := strings.Index(src, "\n"+from)
	j := strings.Index(src, "\nfunc "+fn+"() {\n")
	if i < 0 || j < i {
		t.Fatalf("%s lacks %q before func %s", path, from, fn)
	}
	decls := src[i+1 : j+1]
	// Drop the function's doc comment: it introduces the README block.
	if k := strings.LastIndex(strings.TrimRight(decls, "\n"), "\n\n"); k >= 0 && strings.HasPrefix(decls[k+2:], "//") {
		decls = decls[:k+2]
	}
	rest := src[j+len("\nfunc "+fn+"() {\n"):]
	end := strings.Index(rest, "\n}\n")
	if end < 0 {
		t.Fatalf("%s: func %s does not end", path, fn)
	}
	var body []string
	for _, l := range strings.Split(rest[:end], "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "// Output:") {
			break
		}
		body = append(body, strings.TrimPrefix(l, "\t"))
	}
	return decls + strings.Join(body, "\n") + "\n"
}

// readmeBlock returns the ```go block of README.md that follows marker.
func readmeBlock(t *testing.T, readme, marker string) string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("%s lacks %q", readme, marker)
	}
	rest := doc[i+len(marker):]
	start := strings.Index(rest, "```go\n")
	if start < 0 {
		t.Fatalf("%s: no ```go block after %q", readme, marker)
	}
	rest = rest[start+len("```go\n"):]
	end := strings.Index(rest, "```\n")
	if end < 0 {
		t.Fatalf("%s: the ```go block after %q does not end", readme, marker)
	}
	return rest[:end]
}

// The README's Embedding section is Example_threeNodes (example_embed_test.go).
func TestReadmeEmbeddingIsTheExample(t *testing.T) {
	want := exampleForReadme(t, "example_embed_test.go", "type Online", "Example_threeNodes")
	got := readmeBlock(t, "../../README.md", "<!-- example: pkg/agent/example_embed_test.go Example_threeNodes -->")
	if got != want {
		t.Errorf("README.md's Embedding block differs from Example_threeNodes; it should read:\n%s", want)
	}
	if n := strings.Count(want, "\n"); n > 40 {
		t.Errorf("the README's embedding example has %d lines, more than 40", n)
	}
}
