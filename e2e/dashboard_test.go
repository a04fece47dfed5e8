package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browserNames are the Chromium builds the dashboard test drives, looked
// up in PATH; browserPaths are where Debian puts them outside PATH.
var (
	browserNames = []string{"chromium", "chromium-browser", "chromium-headless-shell", "google-chrome", "google-chrome-stable"}
	browserPaths = []string{"/usr/lib/chromium/chromium", "/usr/lib/chromium/chrome-headless-shell", "/usr/lib/chromium/chrome"}
)

// findBrowser returns a Chromium or Chrome executable, or "".
func findBrowser() string {
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range browserPaths {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// TestDashboard loads the dashboard (/ui/) of a live 3-node cluster in a
// headless Chromium. On n1, which has an admin token, it signs in with the
// token, sees the three nodes alive, sees a kv write on n2 arrive in the
// states grid and in the changes read from the watch stream, and sees n3
// turn failed once it is killed. Then it opens n2's dashboard, which has no
// token (so the Host guard is on), and sees the same without signing in.
// The pages must raise no script error and no Content-Security-Policy
// violation. With DSTATE_SCREENSHOT=path it saves a screenshot of n1's page
// (docs/dashboard.png is made so).
func TestDashboard(t *testing.T) {
	browser := findBrowser()
	if browser == "" {
		t.Skipf("no browser: none of %s in PATH nor %s (.ci/run installs Debian's chromium)",
			strings.Join(browserNames, ", "), strings.Join(browserPaths, ", "))
	}
	const token = "e2e-dashboard-token"
	c := newCluster(t, 3, clusterOpts{noStart: true, extra: func(i int) []string {
		if i == 0 {
			return []string{"--admin-token", token}
		}
		return nil
	}})
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	n1.api.token = token
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitMembers(c.nodes, allAlive(c.nodes), 30*time.Second)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox, // tests run as root, where Chromium's sandbox refuses to start
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")),
		chromedp.WindowSize(1280, 1024),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	// eval evaluates a JavaScript expression returning a string.
	eval := func(expr string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("browser: evaluate %s: %v", expr, err)
		}
		return s
	}

	// The first call starts the browser; it must not have a timeout,
	// which would stop the browser with it.
	start := time.Now()
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", browser, err)
	}
	t.Logf("browser %s started in %s", browser, time.Since(start).Round(time.Millisecond))

	// Script errors and console errors (a CSP violation is one) fail the
	// test; failed requests (the 401 before signing in, a 503 health
	// answer) do not.
	var (
		mu       sync.Mutex
		problems []string
	)
	consoleCtx, stopConsole := context.WithCancel(bctx)
	messages := chromedp.Console(consoleCtx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				mu.Unlock()
			}
		}
	}()
	defer func() { stopConsole(); <-consoleDone }()

	run("open the dashboard and sign in",
		chromedp.Navigate("http://"+n1.httpAddr()+"/ui/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("members")),
	)

	members := `JSON.stringify(Object.fromEntries([...document.querySelectorAll('#members tr[data-member]')].map(r => [r.dataset.member, r.dataset.status])))`
	cell := func(state, node, attr string) string {
		return eval(fmt.Sprintf(`(document.querySelector('#grid td.cell[data-state=%q][data-node=%q]') || {dataset: {}}).dataset.%s || ''`, state, node, attr))
	}
	eventually(t, "the dashboard shows n1, n2 and n3 alive, with their views and Raft peers", 20*time.Second, func() (bool, string) {
		var got map[string]string
		if err := json.Unmarshal([]byte(eval(members)), &got); err != nil {
			return false, err.Error()
		}
		for _, nd := range c.nodes {
			if got[nd.id] != "alive" {
				return false, fmt.Sprintf("members shown: %v", got)
			}
			if g := cell("kv", nd.id, "generation"); g == "" {
				return false, fmt.Sprintf("no kv generation shown for %s", nd.id)
			}
		}
		if peers := eval(`String(document.querySelectorAll('#raft-peers tr[data-peer]').length)`); peers != "3" {
			return false, "raft peers shown: " + peers
		}
		return true, ""
	})

	res := c.mustPut(n2, "kv", "dashboard-key", "dashboard-value")
	eventually(t, "the write on n2 appears in n1's dashboard", 20*time.Second, func() (bool, string) {
		if g := cell("kv", n2.id, "generation"); g != res.Generation {
			return false, fmt.Sprintf("kv × n2 shows %q, want %q", g, res.Generation)
		}
		changes := eval(`[...document.querySelectorAll('#changes li[data-state="kv"][data-node="n2"]')].map(li => li.textContent).join('\n')`)
		if !strings.Contains(changes, "dashboard-key") {
			return false, "the watch stream's changes of kv on n2 do not show the key: " + changes
		}
		return true, ""
	})

	c.kill(n3)
	eventually(t, "the dashboard shows n3 failed", 30*time.Second, func() (bool, string) {
		var got map[string]string
		if err := json.Unmarshal([]byte(eval(members)), &got); err != nil {
			return false, err.Error()
		}
		if got[n3.id] != "failed" {
			return false, fmt.Sprintf("members shown: %v", got)
		}
		if cls := cell("kv", n3.id, "class"); cls != "failing" {
			return false, "kv × n3 is shown as " + cls
		}
		return true, ""
	})

	if path := os.Getenv("DSTATE_SCREENSHOT"); path != "" {
		// Select n2's kv view so that the picture shows a value too.
		run("select n2's kv view",
			chromedp.Click(chromedp.CSS(`#grid td.cell[data-state="kv"][data-node="n2"]`)),
			chromedp.WaitVisible(chromedp.ID("view-detail")),
		)
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("browser: screenshot: %v", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot saved to %s", path)
	}

	// n2 has no token: its page shows the cluster without asking for one.
	run("open n2's dashboard", chromedp.Navigate("http://"+n2.httpAddr()+"/ui/"))
	eventually(t, "n2's dashboard shows the members without a token", 20*time.Second, func() (bool, string) {
		if login := eval(`String(!document.getElementById('login').hidden)`); login != "false" {
			return false, "the login box is shown"
		}
		var got map[string]string
		if err := json.Unmarshal([]byte(eval(members)), &got); err != nil {
			return false, err.Error()
		}
		if got[n1.id] != "alive" || got[n2.id] != "alive" || got[n3.id] != "failed" {
			return false, fmt.Sprintf("members shown: %v", got)
		}
		if g := cell("kv", n2.id, "generation"); g != res.Generation {
			return false, fmt.Sprintf("kv × n2 shows %q, want %q", g, res.Generation)
		}
		return true, ""
	})

	stopConsole()
	<-consoleDone
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("the page reported %s", p)
	}
}
