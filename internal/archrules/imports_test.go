package archrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// module is this module's path; the adapter modules under adapters/ have
// their own.
const module = "github.com/dstate-go/dstate"

// The adapters: packages that implement an interface of pkg/dstate for a
// host (actorkit is the kit the actor runtimes are built on).
var adapters = []string{
	"pkg/actorkit",
	"pkg/gosched",
	"pkg/localpersist",
	"pkg/raftpersist",
	"pkg/serfevents",
	"pkg/transport",
}

// allowed lists, for every package of the module (paths relative to the
// module), the packages of the module its non-test files may import. A
// package missing from the table fails the test: add it, with what it may
// import, keeping to the rules of layerRule. Entries are exact paths.
var allowed = map[string][]string{
	// The pure core imports nothing of the module.
	"pkg/dstate": nil,

	// Test support of the core: no testing in dstatetest (programs link it
	// for the simulation); the suites that need testing sit in conformance,
	// which runs a pkg/node host over the runtime under test.
	"pkg/dstate/dstatetest":             {"pkg/dstate"},
	"pkg/dstate/dstatetest/conformance": {"pkg/dstate", "pkg/dstate/dstatetest", "pkg/node"},

	// Adapters: the core and internal helpers. gosched is built on
	// actorkit, the kit of actor runtimes.
	"pkg/actorkit":     {"pkg/dstate", "internal/backoff"},
	"pkg/gosched":      {"pkg/dstate", "pkg/actorkit"},
	"pkg/localpersist": {"pkg/dstate"},
	"pkg/raftpersist":  {"pkg/dstate", "internal/backoff", "internal/certid", "internal/ratelog", "internal/slogbridge"},
	"pkg/serfevents":   {"pkg/dstate", "internal/slogbridge"},
	"pkg/transport":    {"pkg/dstate", "internal/backoff", "internal/certid", "internal/ratelog"},

	// The host: the core and internal helpers, never an adapter.
	"pkg/node": {"pkg/dstate", "internal/ratelog"},
	// The host's loopback suite wires real transports between hosts.
	"pkg/node/nodetest": {"pkg/dstate", "pkg/dstate/dstatetest", "pkg/node", "pkg/transport"},

	// Definition helpers: encodings for plain Go state types (codec) and
	// ready-made replicated types with handles over the host (replicated).
	"pkg/codec":      {"pkg/dstate"},
	"pkg/replicated": {"pkg/dstate", "pkg/codec", "pkg/node"},

	// The assembled node: every library package and the helpers it uses.
	"pkg/agent": {
		"pkg/dstate", "pkg/node", "pkg/gosched", "pkg/transport", "pkg/serfevents",
		"pkg/raftpersist", "pkg/localpersist", "pkg/codec", "pkg/replicated",
		"internal/backoff", "internal/certid", "internal/ratelog", "internal/tokenfile",
	},

	// Helpers shared by the library: no pkg/ package.
	"internal/archrules":    nil,
	"internal/outsidebuild": nil, // a tool: builds adapters/protoactor as an outside module would
	"internal/backoff":      nil,
	"internal/certid":       nil,
	"internal/fuzzcheck":    nil,
	"internal/gossipattack": nil,
	"internal/ratelog":      nil,
	"internal/slogbridge":   {"internal/ratelog"},
	"internal/tlsgen":       {"internal/certid"},
	"internal/tokenfile":    nil,

	// The command and its own packages.
	"cmd/dstatectl":                  {"cmd/dstatectl/internal/cli"},
	"cmd/dstatectl/internal/cli":     {"cmd/dstatectl/internal/bench", "cmd/dstatectl/internal/simdemo", "internal/tlsgen", "internal/tokenfile", "pkg/agent"},
	"cmd/dstatectl/internal/bench":   {"pkg/dstate", "pkg/dstate/dstatetest", "pkg/gosched", "pkg/node", "pkg/raftpersist", "pkg/transport"},
	"cmd/dstatectl/internal/simdemo": {"pkg/dstate", "pkg/dstate/dstatetest"},

	// The end-to-end tests drive the built command; only their test files
	// import anything.
	"e2e": nil,
}

// layerRule says why importer may not import imported (both relative to
// the module), or "" when the layering allows it. The table above is
// checked against it too, so loosening the table cannot break a layer.
func layerRule(importer, imported string) string {
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	switch {
	case under(imported, "cmd") && (under(importer, "pkg") || under(importer, "internal")):
		return "nothing under pkg/ or internal/ imports the command"
	case importer == "pkg/dstate":
		return "pkg/dstate is the pure core: it imports nothing of the module"
	case slices.Contains(adapters, importer) && (under(imported, "pkg/node") || under(imported, "pkg/agent") || under(imported, "pkg/replicated")):
		return "an adapter implements pkg/dstate's interfaces and never imports the host, what is built on it, or the agent"
	case importer == "pkg/node" && slices.Contains(adapters, imported):
		return "the host reaches adapters through pkg/dstate's interfaces, never by importing one"
	case under(importer, "internal") && under(imported, "pkg") && imported != "pkg/dstate":
		return "internal helpers import no pkg/ package but pkg/dstate"
	}
	return ""
}

// listedPackage is what the tests read of `go list -json`.
type listedPackage struct {
	ImportPath   string
	Module       *struct{ Path string }
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// goList runs `go list -json` with args in dir and decodes its packages.
func goList(t *testing.T, dir string, args ...string) []listedPackage {
	t.Helper()
	// go test puts the go command of the toolchain running the test first
	// on PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	cmd := exec.Command(goTool, append([]string{"list", "-json"}, args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s in %s: %v\n%s", strings.Join(args, " "), dir, err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decoding go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatalf("go list %s in %s listed nothing", strings.Join(args, " "), dir)
	}
	return pkgs
}

// moduleRoot is the directory of this module's go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// local returns path relative to the module and whether it is in it.
func local(path string) (string, bool) {
	if path == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

// TestImportRules checks every package of the module against allowed: its
// non-test files import no package of the module outside its entry, and no
// file of pkg/ or internal/, test files included, imports the command.
func TestImportRules(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range goList(t, moduleRoot(t), "./...") {
		if p.Module == nil || p.Module.Path != module {
			continue // another module of a workspace: adapters/ has its own test
		}
		pkg, ok := local(p.ImportPath)
		if !ok {
			t.Errorf("go list ./... listed %s, outside %s", p.ImportPath, module)
			continue
		}
		seen[pkg] = true
		allow, known := allowed[pkg]
		if !known {
			t.Errorf("%s is not in the import rules: add it to allowed in internal/archrules/imports_test.go with the module packages it may import (see layerRule and ARCHITECTURE.md)", pkg)
		}
		for _, imp := range p.Imports {
			dep, ok := local(imp)
			if !ok {
				continue
			}
			if why := layerRule(pkg, dep); why != "" {
				t.Errorf("%s imports %s: %s", pkg, dep, why)
			} else if known && !slices.Contains(allow, dep) {
				t.Errorf("%s imports %s, which its entry in allowed does not list: keep to the layers, or add it if ARCHITECTURE.md allows it", pkg, dep)
			}
		}
		for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
			if dep, ok := local(imp); ok && strings.HasPrefix(dep, "cmd/") && !strings.HasPrefix(pkg, "cmd/") {
				t.Errorf("a test of %s imports %s: nothing outside cmd/ imports the command", pkg, dep)
			}
		}
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("allowed lists %s, which go list ./... does not: drop its entry", pkg)
		}
	}
}

// TestImportTableKeepsLayers checks the table itself against layerRule,
// so an entry cannot allow what the layering forbids.
func TestImportTableKeepsLayers(t *testing.T) {
	for pkg, allow := range allowed {
		for _, dep := range allow {
			if why := layerRule(pkg, dep); why != "" {
				t.Errorf("allowed lets %s import %s: %s", pkg, dep, why)
			}
		}
	}
}

// adapterForbidden are the packages of this module that an adapter module
// under adapters/ must not import from its non-test files: the host, the
// goroutine runtime, the agent and the command.
var adapterForbidden = []string{"pkg/node", "pkg/gosched", "pkg/agent", "cmd"}

// TestAdapterModuleImports checks the proto.actor adapter, a module of its
// own: its non-test files import the interfaces of pkg/dstate (and the
// runtime kit), never the host or gosched.
func TestAdapterModuleImports(t *testing.T) {
	dir := filepath.Join(moduleRoot(t), "adapters", "protoactor")
	for _, p := range goList(t, dir, "./...") {
		for _, imp := range p.Imports {
			dep, ok := local(imp)
			if !ok || strings.HasPrefix(dep, "adapters/") {
				continue
			}
			for _, f := range adapterForbidden {
				if dep == f || strings.HasPrefix(dep, f+"/") {
					t.Errorf("%s imports %s: an adapter implements pkg/dstate's interfaces and never imports %s", p.ImportPath, imp, f)
				}
			}
		}
	}
}
