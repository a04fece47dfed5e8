package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// testingImporters are the packages outside this module that the command
// links and that import package testing from a non-test file. Each entry
// says why it is tolerated; an entry that no longer imports testing fails
// the test, so the list only shrinks.
var testingImporters = map[string]string{
	// raft's testing.go (MakeCluster and friends) has no build tag.
	"github.com/hashicorp/raft": "upstream testing.go",
}

// TestBinaryLinksNoTestCode lists what dstatectl links and fails if any
// testify package is among it, or if package testing is reached through
// anything but the upstream packages of testingImporters: test support
// (the conformance suites) stays in packages the command does not import.
func TestBinaryLinksNoTestCode(t *testing.T) {
	// go test puts the go command of the toolchain running the test first
	// on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, stderr.String())
	}
	isTesting := func(p string) bool { return p == "testing" || strings.HasPrefix(p, "testing/") }
	seen := map[string]bool{}
	var listed []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg, imports := fields[0], fields[1:]
		listed = append(listed, pkg)
		if strings.HasPrefix(pkg, "github.com/stretchr/testify") {
			t.Errorf("dstatectl links %s", pkg)
		}
		if !slices.ContainsFunc(imports, isTesting) {
			continue
		}
		if _, ok := testingImporters[pkg]; ok {
			seen[pkg] = true
			continue
		}
		t.Errorf("dstatectl links package testing through %s", pkg)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(listed) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	for pkg, why := range testingImporters {
		if !seen[pkg] {
			t.Errorf("%s (%s) no longer brings package testing into dstatectl: drop it from testingImporters", pkg, why)
		}
	}
}
