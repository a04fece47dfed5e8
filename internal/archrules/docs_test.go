package archrules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// documentedTrees are the directories, relative to the module root, whose
// packages must document every exported name. The command's packages and
// the proto.actor adapter module are held to the same rule.
var documentedTrees = []string{"pkg", "internal", "cmd", "adapters"}

// TestExportedNamesHaveDocs parses the non-test files of every package
// under documentedTrees and fails on a package without a doc.go carrying
// the package comment (a command may have it in any file), and on an exported name without a doc comment:
// functions, methods of exported types, types, constants and variables
// (a comment on a parenthesized group covers its members), and the
// methods of exported interfaces. go vet does not check this.
func TestExportedNamesHaveDocs(t *testing.T) {
	root := moduleRoot(t)
	checked := 0
	for _, tree := range documentedTrees {
		err := filepath.WalkDir(filepath.Join(root, tree), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() {
				return nil
			}
			if name := d.Name(); name == "testdata" || (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) && path != root {
				return filepath.SkipDir
			}
			rel, _ := filepath.Rel(root, path)
			if checkDir(t, path, filepath.ToSlash(rel)) {
				checked++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 20 {
		t.Fatalf("checked %d packages: the walk found too few", checked)
	}
}

// checkDir checks the package in dir (rel names it in messages) and
// reports whether dir held one.
func checkDir(t *testing.T, dir, rel string) bool {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	var names []string
	hasDoc := false
	for _, path := range matches {
		name := filepath.Base(path)
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if ast.IsGenerated(f) {
			continue
		}
		// A command may carry its doc in its main file, as go doc expects.
		if f.Doc != nil && (name == "doc.go" || f.Name.Name == "main") {
			hasDoc = true
		}
		files = append(files, f)
		names = append(names, name)
	}
	if len(files) == 0 {
		return false
	}
	if !hasDoc {
		t.Errorf("%s: no doc.go with the package comment", rel)
	}
	for i, f := range files {
		for _, missing := range undocumented(f) {
			t.Errorf("%s/%s: %s has no doc comment", rel, names[i], missing)
		}
	}
	return true
}

// undocumented lists the exported names declared in f without a doc
// comment.
func undocumented(f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || d.Doc != nil {
				continue
			}
			if d.Recv == nil {
				out = append(out, "func "+d.Name.Name)
			} else if recv := receiverType(d.Recv); ast.IsExported(recv) {
				out = append(out, "method "+recv+"."+d.Name.Name)
			}
		case *ast.GenDecl:
			grouped := d.Lparen.IsValid() && d.Doc != nil
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if !s.Name.IsExported() {
						continue
					}
					if s.Doc == nil && d.Doc == nil {
						out = append(out, "type "+s.Name.Name)
					}
					if it, ok := s.Type.(*ast.InterfaceType); ok {
						for _, m := range it.Methods.List {
							if _, isFunc := m.Type.(*ast.FuncType); !isFunc || m.Doc != nil || m.Comment != nil {
								continue
							}
							for _, n := range m.Names {
								if n.IsExported() {
									out = append(out, "interface method "+s.Name.Name+"."+n.Name)
								}
							}
						}
					}
				case *ast.ValueSpec:
					if s.Doc != nil || s.Comment != nil || grouped || d.Doc != nil && !d.Lparen.IsValid() {
						continue
					}
					for _, n := range s.Names {
						if n.IsExported() {
							out = append(out, d.Tok.String()+" "+n.Name)
						}
					}
				}
			}
		}
	}
	return slices.Compact(out)
}

// receiverType names the type of a method's receiver, without pointer or
// type parameters.
func receiverType(fl *ast.FieldList) string {
	if fl == nil || len(fl.List) == 0 {
		return ""
	}
	expr := fl.List[0].Type
	for {
		switch e := expr.(type) {
		case *ast.StarExpr:
			expr = e.X
		case *ast.IndexExpr:
			expr = e.X
		case *ast.IndexListExpr:
			expr = e.X
		case *ast.ParenExpr:
			expr = e.X
		case *ast.Ident:
			return e.Name
		default:
			return ""
		}
	}
}
