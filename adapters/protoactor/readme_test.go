package protoactor_test

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
)

const readmeMarker = "<!-- example: adapters/protoactor/example_agent_test.go Example_agent -->"

// The README's proto.actor block is the body of Example_agent from the
// line that creates the actor system, one tab less indented, without the
// "// Output:" comment, so it compiles as written.
func TestReadmeProtoActorIsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("no README.md two directories up: not inside the repository")
	}
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("example_agent_test.go")
	if err != nil {
		t.Fatal(err)
	}
	const fn = "\nfunc Example_agent() {\n"
	s := string(src)
	i := strings.Index(s, fn)
	if i < 0 {
		t.Fatal("example_agent_test.go lacks func Example_agent")
	}
	body := s[i+len(fn):]
	body = body[:strings.Index(body, "\n}\n")+1]
	j := strings.Index(body, "\tsystem := ")
	if j < 0 {
		t.Fatal("Example_agent does not create an actor system")
	}
	var want strings.Builder
	for _, l := range strings.SplitAfter(body[j:], "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "// Output:") {
			break
		}
		want.WriteString(strings.TrimPrefix(l, "\t"))
	}

	doc := string(readme)
	k := strings.Index(doc, readmeMarker)
	if k < 0 {
		t.Fatalf("README.md lacks %q", readmeMarker)
	}
	rest := doc[k+len(readmeMarker):]
	start := strings.Index(rest, "```go\n")
	if start < 0 {
		t.Fatalf("README.md has no ```go block after %q", readmeMarker)
	}
	rest = rest[start+len("```go\n"):]
	got := rest[:strings.Index(rest, "```\n")]
	if got != want.String() {
		t.Errorf("README.md's proto.actor block differs from Example_agent; it should read:\n%s", want.String())
	}
}
