package agent

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dstate-go/dstate/internal/ratelog"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// adminBackend is what the admin API needs of the agent: every endpoint is
// one call. *Agent implements it; the server holds nothing else of it.
type adminBackend interface {
	Live() Liveness
	Ready() Readiness
	Health(ctx context.Context, maxStaleness time.Duration) (Health, error)
	Members() []Member
	States() []StateInfo
	Dump(ctx context.Context, state string, opts DumpOptions) (StateDump, error)
	Watch(ctx context.Context, state string, opts WatchOptions) (iter.Seq2[StateChange, error], error)
	GetKV(state, nodeID, key string) (KVValue, error)
	WriteKV(ctx context.Context, state string, c KVChange) (WriteResult, error)
	Join(ctx context.Context, addrs []string) (int, error)
	RaftStatus(ctx context.Context) (RaftStatus, error)
	Bootstrap(ctx context.Context, servers []string) (BootstrapResult, error)
	RemovePeer(ctx context.Context, id string) (RemovePeerResult, error)
	ForceLeave(ctx context.Context, node string, prune bool) (ForceLeaveResult, error)
	Keyring(ctx context.Context) (KeyringStatus, error)
	KeyringOp(ctx context.Context, op, key string) error
	// leave marks the agent stopping and leaves the cluster (leave.go);
	// stopLater then stops the agent in the background.
	leave(ctx context.Context) (LeaveResult, error)
	stopLater()
	// gatherer is what /metrics serves.
	gatherer() prometheus.Gatherer
	// testFaults is the fault switch served under /v1/test/faults, or
	// nil when the agent runs without TestHooks.Faults (faults.go).
	testFaults() faultSwitch
}

// opTimeout bounds a join or keyring operation the admin API runs.
const opTimeout = 10 * time.Second

// apiServer is the admin HTTP API: its listener (with the connection caps
// of http_conns.go and TLS), its handler (the endpoints of api.go behind
// the guards of http_guard.go and the token check) and its counters.
type apiServer struct {
	b   adminBackend
	cfg Config // the http_* settings, the admin token, max_request_bytes
	log *slog.Logger

	ln    net.Listener
	conns *connLimiter // the connection caps and counts
	srv   *http.Server
	wg    sync.WaitGroup

	oversizedRequests atomic.Uint64   // request bodies over max_request_bytes
	requestLog        ratelog.Limiter // one oversized-request warning per host per interval
	httpMetrics       httpMetrics     // requests per route; failed writes are logged (http_metrics.go)
}

func newAPIServer(cfg Config, log *slog.Logger, b adminBackend) *apiServer {
	return &apiServer{b: b, cfg: cfg, log: log}
}

// listen loads the API's TLS material and binds its listener; serve
// serves it once the agent is complete.
func (s *apiServer) listen() error {
	tlsCfg, err := httpTLS(s.cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("agent: http_addr %s: %w", s.cfg.HTTPAddr, err)
	}
	s.conns = newConnLimiter(s.cfg, s.log, ln)
	ln = s.conns
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.ln = ln
	return nil
}

// serve serves the API on the listener listen bound.
func (s *apiServer) serve() {
	s.srv = s.newHTTPServer()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin API stopped", "err", err)
		}
	}()
}

// shutdown stops serving, letting requests in flight finish within 2 s
// (bounded by ctx), or closes a listener that was never served.
func (s *apiServer) shutdown(ctx context.Context) {
	if s.srv != nil {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := s.srv.Shutdown(sctx); err != nil {
			_ = s.srv.Close()
		}
		cancel()
	} else if s.ln != nil {
		_ = s.ln.Close() // bound by a start that failed before serving
	}
	s.wg.Wait()
}

// addr is the listening address, "" before listen.
func (s *apiServer) addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// maxRequestBytes is the request body limit.
func (s *apiServer) maxRequestBytes() int64 {
	if s.cfg.MaxRequestBytes > 0 {
		return int64(s.cfg.MaxRequestBytes)
	}
	return DefaultMaxRequestBytes
}

// Handler returns the admin API (see api.go for the endpoints). It refuses
// requests a web page could have sent (see http_guard.go): a Host header
// other than the agent's admin address when it has no token, a
// cross-origin Sec-Fetch-Site or Origin, and a state-changing call without
// Content-Type application/json; then it checks the token, if any.
func (a *Agent) Handler() http.Handler { return a.api.handler() }

// route is one endpoint of the admin API: a ServeMux pattern with its
// method and its handler.
type route struct {
	pattern string // e.g. "GET /v1/kv/{key}"
	handler http.Handler
}

// routes lists the API's endpoints (api.go and openapi.json document each)
// and the dashboard's files under /ui/ (ui.go), which are not an endpoint.
func (s *apiServer) routes() []route {
	rs := []route{
		{"GET /v1/health", http.HandlerFunc(s.getHealth)},
		{"GET /v1/health/live", http.HandlerFunc(s.getLive)},
		{"GET /v1/health/ready", http.HandlerFunc(s.getReady)},
		{"GET /v1/members", http.HandlerFunc(s.getMembers)},
		{"GET /v1/states", http.HandlerFunc(s.getStates)},
		{"GET /v1/states/{name}", http.HandlerFunc(s.getState)},
		{"GET /v1/states/{name}/watch", http.HandlerFunc(s.getWatch)},
		{"GET /v1/kv/{key}", http.HandlerFunc(s.getKV)},
		{"PUT /v1/kv/{key}", http.HandlerFunc(s.putKV)},
		{"DELETE /v1/kv/{key}", http.HandlerFunc(s.delKV)},
		{"POST /v1/join", http.HandlerFunc(s.postJoin)},
		{"POST /v1/leave", http.HandlerFunc(s.postLeave)},
		{"GET /v1/raft", http.HandlerFunc(s.getRaft)},
		{"POST /v1/raft/bootstrap", http.HandlerFunc(s.postBootstrap)},
		{"POST /v1/raft/remove-peer", http.HandlerFunc(s.postRemovePeer)},
		{"POST /v1/force-leave", http.HandlerFunc(s.postForceLeave)},
		{"GET /v1/keyring", http.HandlerFunc(s.getKeyring)},
		{"POST /v1/keyring/{op}", http.HandlerFunc(s.postKeyring)},
		{"GET /v1/openapi.json", http.HandlerFunc(getOpenAPI)},
		{"GET /metrics", promhttp.HandlerFor(s.b.gatherer(), promhttp.HandlerOpts{})},
		// The dashboard's static files (ui.go): a page, not an API route,
		// so openapi.json does not list it.
		{"GET " + uiPrefix, uiHandler()},
	}
	return append(rs, s.faultRoutes()...)
}

// handler is the API's handler: the endpoints behind the guards.
func (s *apiServer) handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.instrument(rt.pattern, rt.handler))
	}
	bound := s.addr()
	if bound == "" {
		bound = s.cfg.HTTPAddr
	}
	return newHostGuard(s.cfg, bound).guard(s.auth(unmatched(mux)))
}

// unmatched answers the requests no route matches with a JSON APIError:
// 405 with the Allow header the mux computes when the path exists with
// other methods, else 404.
func unmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &headerRecorder{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch {
		case probe.status == http.StatusMethodNotAllowed:
			allow := probe.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, allow))
		case probe.status == http.StatusNotFound:
			writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s (GET /v1/openapi.json lists them)", r.Method, r.URL.Path))
		default: // a redirect to the clean path
			mux.ServeHTTP(w, r)
		}
	})
}

// headerRecorder keeps the status and headers of the mux's own answer to
// an unmatched request and drops its plain-text body.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }

// auth checks the bearer token in constant time when the agent has one;
// with http_public_probes the probes and /metrics need none (health.go),
// and the dashboard's static files never do (they hold no data: ui.go).
func (s *apiServer) auth(next http.Handler) http.Handler {
	if s.cfg.AdminToken == "" {
		return next
	}
	want := []byte(s.cfg.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (s.cfg.HTTPPublicProbes && publicProbe(r)) || uiAsset(r) {
			next.ServeHTTP(w, r)
			return
		}
		header := r.Header.Get("Authorization")
		got, isBearer := bearerToken(header)
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dstate"`)
			msg := "missing bearer token: send Authorization: Bearer <token>"
			switch {
			case isBearer:
				msg = "the bearer token does not match the agent's admin token"
			case header != "":
				msg = "the Authorization header is not a bearer token: send Authorization: Bearer <token>"
			}
			writeError(w, http.StatusUnauthorized, errors.New(msg))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken is the token of an Authorization header "Bearer <token>";
// the scheme is case-insensitive (RFC 9110 section 11.1), and the token
// may be surrounded by spaces.
func bearerToken(header string) (token []byte, ok bool) {
	scheme, tok, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	return []byte(strings.TrimSpace(tok)), true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, APIError{Error: err.Error()})
}

// badRequest is an error in the request, answered with 400.
type badRequest struct{ error }

// tooLarge is a request over a size limit (413).
type tooLarge struct{ error }

// statusOf maps an error to its HTTP status.
func statusOf(err error) int {
	var br badRequest
	var tl tooLarge
	var re *dstate.RegistryError
	var cf conflict
	switch {
	case errors.As(err, &tl), errors.Is(err, dstate.ErrStateTooLarge):
		// A write the state could not replicate is refused (undone) as a
		// body over a limit is.
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &br):
		return http.StatusBadRequest
	case errors.As(err, &re), errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errNotEnabled), errors.As(err, &cf):
		return http.StatusConflict
	case errors.Is(err, dstate.ErrStorageUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, errNotReady):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

var (
	errNotFound   = errors.New("not found")
	errNotEnabled = errors.New("not enabled on this agent")
	errNotReady   = errors.New("not ready")
)

func duration(r *http.Request, name string, def time.Duration) (time.Duration, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, badRequest{fmt.Errorf("query parameter %s=%q is not a duration like 5s", name, s)}
	}
	return d, nil
}

func boolParam(r *http.Request, name string) (bool, error) {
	switch s := r.URL.Query().Get(name); s {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, badRequest{fmt.Errorf("query parameter %s=%q is not true or false", name, s)}
	}
}

func (s *apiServer) getMembers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.b.Members())
}

func (s *apiServer) getStates(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.b.States())
}

func (s *apiServer) getState(w http.ResponseWriter, r *http.Request) {
	maxStale, err := duration(r, "max_staleness", 0)
	if err == nil {
		var consistent bool
		consistent, err = boolParam(r, "consistent")
		if err == nil {
			var d StateDump
			d, err = s.b.Dump(r.Context(), r.PathValue("name"), DumpOptions{Node: r.URL.Query().Get("node"), MaxStaleness: maxStale, Consistent: consistent})
			if err == nil {
				writeJSON(w, http.StatusOK, d)
				return
			}
		}
	}
	writeError(w, statusOf(err), err)
}

// getWatch streams a state's changes (watch.go).
func (s *apiServer) getWatch(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	serveWatch(w, r, func(ctx context.Context, opts WatchOptions) (iter.Seq2[StateChange, error], error) {
		return s.b.Watch(ctx, name, opts)
	})
}

func kvState(r *http.Request) string {
	if s := r.URL.Query().Get("state"); s != "" {
		return s
	}
	return KVState
}

func (s *apiServer) getKV(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := s.checkKey(key); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	v, err := s.b.GetKV(kvState(r), r.URL.Query().Get("node"), key)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *apiServer) putKV(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := s.checkKey(key); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	body, err := s.readValue(w, r)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	s.writeKV(w, r, KVChange{Key: key, Value: string(body)})
}

func (s *apiServer) delKV(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if err := s.checkKey(key); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	s.writeKV(w, r, KVChange{Key: key, Delete: true})
}

func (s *apiServer) writeKV(w http.ResponseWriter, r *http.Request, c KVChange) {
	res, err := s.b.WriteKV(r.Context(), kvState(r), c)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// countOversizedRequest counts a request over max_request_bytes and logs it
// once per client host per interval.
func (s *apiServer) countOversizedRequest(r *http.Request) {
	s.oversizedRequests.Add(1)
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ok, suppressed := s.requestLog.Allow(host); ok {
		s.log.Warn("admin API: request body over max_request_bytes refused", "remote", r.RemoteAddr, "path", r.URL.Path,
			"limit", s.maxRequestBytes(), "suppressed", suppressed)
	}
}

func (s *apiServer) postJoin(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := s.decodeBody(w, r, "join", &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	if len(req.Addrs) == 0 {
		writeError(w, http.StatusBadRequest, errors.New("addrs is empty: name at least one gossip address to join"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	n, err := s.b.Join(ctx, req.Addrs)
	if err != nil {
		writeError(w, http.StatusBadGateway, err)
		return
	}
	writeJSON(w, http.StatusOK, JoinResult{Joined: n})
}

// postLeave leaves the cluster (gossip, then the Raft configuration; see
// leave.go) before it answers, then stops the agent in the background.
// When the server could not leave the Raft configuration it answers 503
// with the reason; the agent stops all the same.
func (s *apiServer) postLeave(w http.ResponseWriter, r *http.Request) {
	res, err := s.b.leave(context.WithoutCancel(r.Context()))
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%w; the agent left gossip and is shutting down", err))
	} else {
		writeJSON(w, http.StatusOK, res)
	}
	s.b.stopLater()
}

func (s *apiServer) getRaft(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.RaftStatus(r.Context())
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *apiServer) postBootstrap(w http.ResponseWriter, r *http.Request) {
	var req BootstrapRequest
	if r.ContentLength != 0 {
		if err := s.decodeBody(w, r, "bootstrap", &req); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
	}
	res, err := s.b.Bootstrap(r.Context(), req.Servers)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *apiServer) getKeyring(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	st, err := s.b.Keyring(ctx)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *apiServer) postKeyring(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	if op != "install" && op != "use" && op != "remove" {
		writeError(w, http.StatusNotFound, fmt.Errorf("keyring operation %q is not install, use or remove", op))
		return
	}
	var req KeyRequest
	if err := s.decodeBody(w, r, "keyring "+op, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	if strings.TrimSpace(req.Key) == "" {
		writeError(w, http.StatusBadRequest, errors.New("key is empty"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), opTimeout)
	defer cancel()
	if err := s.b.KeyringOp(ctx, op, req.Key); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
