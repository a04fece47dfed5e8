// Command outsidebuild checks that adapters/protoactor builds the way an
// application outside this repository builds it: without the go.work of
// the repository root and without any replace directive of its own. It
// writes a module proxy directory (the GOPROXY protocol's file layout) that
// serves the core module, at the version the adapter's go.mod requires, and
// the adapter, both zipped from the working tree; then creates a throwaway
// module in a temporary directory that requires the adapter and imports it
// together with the core's agent, and runs go build there with
// GOPROXY=file://<that directory>, then the local module cache (then the
// usual GOPROXY, for a module the workspace never needed), with GOSUMDB
// off: the working tree's modules have no checksums to check. Run it from
// the repository root after the workspace's modules were downloaded, as
// make test does.
//
//	go run ./internal/outsidebuild
package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

const (
	adapterDir = "adapters/protoactor"
	// adapterVersion is the version the proxy serves the adapter at: any
	// version will do, the throwaway module requires this one.
	adapterVersion = "v0.0.0-20000101000000-000000000000"
)

// program is the throwaway module's main package: the adapter's runtime
// under a whole agent, as the README's proto.actor section does.
const program = `package main

import (
	"context"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dstate-go/dstate/adapters/protoactor"
	"github.com/dstate-go/dstate/pkg/agent"
)

func main() {
	rt, err := protoactor.New(protoactor.Options{System: actor.NewActorSystem()})
	if err != nil {
		panic(err)
	}
	defer rt.Close()
	cfg := agent.LocalConfig("/nonexistent/outside")
	if false { // compiled, not run
		a, _ := agent.Start(context.Background(), cfg, agent.WithRuntime(rt))
		fmt.Println(a.Addrs())
	}
}
`

func main() {
	start := time.Now()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "outsidebuild:", err)
		os.Exit(1)
	}
	fmt.Printf("outsidebuild: %s builds from a module proxy, outside the repository (%s)\n", adapterDir, time.Since(start).Round(time.Millisecond))
}

func run() error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	core, err := readModFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	adapter, err := readModFile(filepath.Join(root, adapterDir, "go.mod"))
	if err != nil {
		return err
	}
	if len(adapter.Replace) > 0 {
		return fmt.Errorf("%s/go.mod has replace directives, which an outside build ignores: use go.work", adapterDir)
	}
	coreVersion := ""
	for _, r := range adapter.Require {
		if r.Mod.Path == core.Module.Mod.Path {
			coreVersion = r.Mod.Version
		}
	}
	if coreVersion == "" {
		return fmt.Errorf("%s/go.mod does not require %s", adapterDir, core.Module.Mod.Path)
	}

	tmp, err := os.MkdirTemp("", "dstate-outsidebuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	proxy := filepath.Join(tmp, "proxy")
	if err := publish(proxy, module.Version{Path: core.Module.Mod.Path, Version: coreVersion}, root); err != nil {
		return err
	}
	if err := publish(proxy, module.Version{Path: adapter.Module.Mod.Path, Version: adapterVersion}, filepath.Join(root, adapterDir)); err != nil {
		return err
	}

	app := filepath.Join(tmp, "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		return err
	}
	gomod := fmt.Sprintf("module example.com/outside\n\ngo %s\n\nrequire %s %s\n", adapter.Go.Version, adapter.Module.Mod.Path, adapterVersion)
	if err := os.WriteFile(filepath.Join(app, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(app, "main.go"), []byte(program), 0o644); err != nil {
		return err
	}
	goenv, err := exec.Command("go", "env", "GOMODCACHE", "GOPROXY").Output()
	if err != nil {
		return fmt.Errorf("go env: %w", err)
	}
	vars := strings.Split(strings.TrimSpace(string(goenv)), "\n")
	if len(vars) != 2 {
		return fmt.Errorf("go env GOMODCACHE GOPROXY: %q", goenv)
	}
	cache := filepath.Join(vars[0], "cache", "download")
	proxies := "file://" + filepath.ToSlash(proxy) + ",file://" + filepath.ToSlash(cache)
	if vars[1] != "" && vars[1] != "off" {
		// A module the workspace never needed (one the core replaces,
		// say) may be missing from the module cache.
		proxies += "," + vars[1]
	}
	// A module cache of its own, so the working tree's modules, served
	// at versions that may one day be published, never land in the
	// shared one; -trimpath keeps the build cache's entries independent of
	// the module cache's path, so the dependencies compile once.
	env := append(os.Environ(),
		"GOPROXY="+proxies,
		"GOMODCACHE="+filepath.Join(tmp, "modcache"),
		"GOFLAGS=-mod=mod", "GOSUMDB=off", "GONOSUMDB=", "GOPRIVATE=", "GOWORK=off", "GOTOOLCHAIN=local",
	)
	for _, args := range [][]string{{"build", "-trimpath", "-o", os.DevNull, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir, cmd.Env = app, env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s in a module outside the repository: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The module cache's files are read-only; let RemoveAll delete them.
	cmd := exec.Command("go", "clean", "-modcache")
	cmd.Dir, cmd.Env = app, env
	_ = cmd.Run()
	return nil
}

func readModFile(path string) (*modfile.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return modfile.Parse(path, b, nil)
}

// publish writes m, zipped from dir, into the proxy directory: the .info,
// .mod and .zip files and the version list of the GOPROXY protocol.
func publish(proxy string, m module.Version, dir string) error {
	escaped, err := module.EscapePath(m.Path)
	if err != nil {
		return err
	}
	at := filepath.Join(proxy, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		return err
	}
	var zbuf bytes.Buffer
	if err := modzip.CreateFromDir(&zbuf, m, dir); err != nil {
		return fmt.Errorf("zip %s: %w", m, err)
	}
	if _, err := zip.NewReader(bytes.NewReader(zbuf.Bytes()), int64(zbuf.Len())); err != nil {
		return fmt.Errorf("zip %s: %w", m, err)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	info, _ := json.Marshal(struct {
		Version string
		Time    time.Time
	}{m.Version, time.Now().UTC().Truncate(time.Second)})
	for name, data := range map[string][]byte{
		m.Version + ".info": info, m.Version + ".mod": gomod, m.Version + ".zip": zbuf.Bytes(), "list": []byte(m.Version + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(at, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
