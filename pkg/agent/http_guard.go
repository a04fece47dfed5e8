package agent

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// The admin API refuses what a web page in the local user's browser could
// send it. Without a token (the default, loopback only) every process and
// every browser tab of the machine can reach the API, so the browser's own
// rules are what keeps a page off it:
//
//   - Host: without an admin token the Host header must name the address
//     the API is bound to (127.0.0.1:PORT, localhost:PORT or [::1]:PORT
//     on a loopback address, or the bound host itself) or one of
//     http_allowed_hosts. A page that rebinds its own DNS name to 127.0.0.1
//     sends its own name as Host and is refused (403), so DNS rebinding
//     gets it nowhere. With a token the page cannot authenticate, so the
//     Host header is not checked there unless http_allowed_hosts is set,
//     which operators behind a proxy or on a public name use to keep it
//     checked.
//   - Sec-Fetch-Site: a browser request that says it comes from another
//     origin (cross-site, or same-site such as a dev server on
//     localhost:3000) is refused (403), whatever its method: no page of
//     another origin has a reason to call it. "same-origin" (the
//     dashboard's own requests, ui.go) and "none" (typed into the address
//     bar) pass.
//   - Origin: a request whose Origin is neither the request's own Host
//     nor one of the API's accepted hosts is refused (403); this covers
//     browsers that do not send Sec-Fetch-Site. Origin "null" (sandboxed
//     frames, file:// pages) is refused too.
//   - Content-Type: state-changing calls (POST, PUT, DELETE, PATCH) must
//     send Content-Type application/json (PUT /v1/kv/{key}, whose body is
//     the raw value, also takes application/octet-stream); anything else
//     is refused with 415. text/plain, form and multipart bodies are the
//     ones a page may send to any address without the browser asking the
//     server first (a CORS preflight, which this API never grants).
//
// The agent creates no token by default: every dstatectl command of a
// tokenless cluster (make demo, the three nodes started by hand in the
// README) would then need --token-file, and what a browser page could do is
// refused above. What stays open without a token is other local users'
// processes; on a shared host, set admin_token_file.
//
// net/http's CrossOriginProtection applies the Sec-Fetch-Site and Origin
// rules to unsafe methods only and compares Origin with the Host header it
// does not check; the guard here applies them to every method, checks Host
// against the bound address first, and answers with the API's JSON errors.

// hostGuard is the admin API's cross-site and DNS-rebinding guard.
type hostGuard struct {
	// hosts are the accepted Host values, lower-case host:port; nil
	// accepts any Host (a token is set and http_allowed_hosts is empty).
	hosts map[string]bool
	// names is hosts in order, for error messages.
	names string
	// tls says whether the API is served over HTTPS (for default ports).
	tls bool
}

// newHostGuard builds the guard for an API bound to bound (the listener's
// address) with cfg's token and http_allowed_hosts.
func newHostGuard(cfg Config, bound string) *hostGuard {
	g := &hostGuard{tls: cfg.HTTPTLSCertFile != ""}
	if cfg.AdminToken != "" && len(cfg.HTTPAllowedHosts) == 0 {
		return g
	}
	g.hosts = map[string]bool{}
	if host, port, err := net.SplitHostPort(bound); err == nil {
		g.hosts[strings.ToLower(net.JoinHostPort(host, port))] = true
		if isLoopback(bound) {
			for _, h := range []string{"127.0.0.1", "localhost", "::1"} {
				g.hosts[net.JoinHostPort(h, port)] = true
			}
		}
	}
	for _, h := range cfg.HTTPAllowedHosts {
		g.hosts[g.canonical(h)] = true
	}
	names := make([]string, 0, len(g.hosts))
	for h := range g.hosts {
		names = append(names, h)
	}
	sort.Strings(names)
	g.names = strings.Join(names, ", ")
	return g
}

// canonical is host:port in lower case, with the scheme's default port
// when hostport names none.
func (g *hostGuard) canonical(hostport string) string { return canonicalHost(hostport, g.tls) }

// canonicalHost is hostport in lower case with the default port of http
// (or of https) when it names none.
func canonicalHost(hostport string, https bool) string {
	hostport = strings.ToLower(strings.TrimSpace(hostport))
	if host, port, err := net.SplitHostPort(hostport); err == nil {
		return net.JoinHostPort(host, port)
	}
	port := "80"
	if https {
		port = "443"
	}
	return net.JoinHostPort(strings.Trim(hostport, "[]"), port)
}

// accepts reports whether hostport is one of the API's own names.
func (g *hostGuard) accepts(hostport string) bool {
	return g.hosts == nil || g.hosts[g.canonical(hostport)]
}

// check returns the status and reason to refuse r with, or 0.
func (g *hostGuard) check(r *http.Request) (int, error) {
	if !g.accepts(r.Host) {
		return http.StatusForbidden, fmt.Errorf("refused: Host %q is not this agent's admin address (it accepts %s): a request for another name may be a DNS-rebinding page; list the name in http_allowed_hosts to serve it",
			r.Host, g.names)
	}
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return http.StatusForbidden, fmt.Errorf("refused: cross-origin browser request (Sec-Fetch-Site: %s); the admin API takes no requests from web pages", site)
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return http.StatusForbidden, fmt.Errorf("refused: cross-origin browser request (Origin: %q is not this agent's address); the admin API takes no requests from web pages", origin)
		}
		from := canonicalHost(u.Host, u.Scheme == "https")
		if from != g.canonical(r.Host) && !g.hosts[from] {
			return http.StatusForbidden, fmt.Errorf("refused: cross-origin browser request (Origin: %s is not this agent's address %s); the admin API takes no requests from web pages", origin, r.Host)
		}
	}
	if !stateChanging(r.Method) {
		return 0, nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || (mt == "application/octet-stream" && r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/kv/"))) {
		return 0, nil
	}
	want := "application/json"
	if r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/kv/") {
		want = "application/json or application/octet-stream"
	}
	if ct == "" {
		ct = "none"
	}
	return http.StatusUnsupportedMediaType, fmt.Errorf("refused: %s %s needs Content-Type %s, got %s (a browser page can send text/plain and form bodies to any address)",
		r.Method, r.URL.Path, want, ct)
}

// stateChanging reports whether method may change the agent's state.
func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// guard wraps next with the host guard.
func (g *hostGuard) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status, err := g.check(r); status != 0 {
			writeError(w, status, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
