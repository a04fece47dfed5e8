package agent

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

// The dashboard is a read-only web page served at /ui/: the members and
// their status, a states × nodes grid (generation, view age, staleness),
// the Raft peers with how far each trails the leader, and the health
// report. It is three static files embedded in the binary (no framework,
// nothing loaded from another address: it works offline) that read the
// admin API from the browser:
//
//   - the states grid follows GET /v1/states/{name}/watch (read with fetch
//     and a stream reader, not EventSource, so that it can send the
//     Authorization header), and GET /v1/states/{name} every 2 s
//     for the view ages;
//   - members, Raft and health are polled every 1.5 s.
//
// The static files hold no data and are served without the admin token;
// every request the page makes for data goes through the same token check
// and browser guards as any other API call (http_guard.go). With a token
// the page asks for it once and keeps it in the tab's sessionStorage (gone
// when the tab closes), sending it as Authorization: Bearer. The page's own
// requests are same-origin (Sec-Fetch-Site: same-origin, and no Origin on
// a GET), which the guard lets through; a page of another origin is still
// refused. The files are sent with a Content-Security-Policy that allows
// only the agent's own address (default-src 'self', no inline script or
// style) and forbids framing.

//go:embed ui
var uiFiles embed.FS

// uiPrefix is the path the dashboard is served under.
const uiPrefix = "/ui/"

// uiCSP is the Content-Security-Policy of the dashboard's files.
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// uiHandler serves the dashboard's embedded files under /ui/.
func uiHandler() http.Handler {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	files := http.StripPrefix(strings.TrimSuffix(uiPrefix, "/"), http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", uiCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary, which sets no modification
		// time: revalidate on each load.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// uiAsset reports whether r asks for one of the dashboard's static files
// (or /ui, which redirects to /ui/), which are served without the admin
// token.
func uiAsset(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	return r.URL.Path == strings.TrimSuffix(uiPrefix, "/") || strings.HasPrefix(r.URL.Path, uiPrefix)
}
