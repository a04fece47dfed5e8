package dstate_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCoreIsPure enforces the package's contract: no goroutines, no wall
// clock or timers (except SystemClock, the one production Clock, whose
// AfterFunc only runtimes call and whose monotonic reading, Since, the
// engine takes through its own clock when that clock is the SystemClock), no network, files or processes. It is
// what makes the engine simulable.
func TestCoreIsPure(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{"net": true, "os": true, "syscall": true, "io/fs": true, "runtime": true, "unsafe": true}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if forbidden[path] || strings.HasPrefix(path, "net/") || strings.HasPrefix(path, "os/") {
				t.Errorf("%s imports %q: pkg/dstate must stay free of I/O, processes and runtime tricks", name, path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: a go statement at %s: the engine must not start goroutines", name, fset.Position(n.Pos()))
			case *ast.SelectorExpr:
				if id, ok := n.X.(*ast.Ident); ok && id.Name == "time" {
					switch n.Sel.Name {
					case "Now", "Since", "Until", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick":
						if name != "clock.go" || (n.Sel.Name != "Now" && n.Sel.Name != "Since" && n.Sel.Name != "AfterFunc") {
							t.Errorf("%s: time.%s at %s: read time through the injected Clock", name, n.Sel.Name, fset.Position(n.Pos()))
						}
					}
				}
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("checked %d files: run from the package directory", checked)
	}
}
