package agent

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Handler returns the admin API (see api.go for the endpoints). It refuses
// requests a web page could have sent (see http_guard.go): a Host header
// other than the agent's admin address when it has no token, a
// cross-origin Sec-Fetch-Site or Origin, and a state-changing call without
// Content-Type application/json; then it checks the token, if any.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", a.getHealth)
	mux.HandleFunc("GET /v1/health/live", a.getLive)
	mux.HandleFunc("GET /v1/health/ready", a.getReady)
	mux.HandleFunc("GET /v1/members", a.getMembers)
	mux.HandleFunc("GET /v1/states", a.getStates)
	mux.HandleFunc("GET /v1/states/{name}", a.getState)
	mux.HandleFunc("GET /v1/kv/{key}", a.getKV)
	mux.HandleFunc("PUT /v1/kv/{key}", a.putKV)
	mux.HandleFunc("DELETE /v1/kv/{key}", a.delKV)
	mux.HandleFunc("POST /v1/join", a.postJoin)
	mux.HandleFunc("POST /v1/leave", a.postLeave)
	mux.HandleFunc("GET /v1/raft", a.getRaft)
	mux.HandleFunc("POST /v1/raft/bootstrap", a.postBootstrap)
	mux.HandleFunc("POST /v1/raft/remove-peer", a.postRemovePeer)
	mux.HandleFunc("POST /v1/force-leave", a.postForceLeave)
	mux.HandleFunc("GET /v1/keyring", a.getKeyring)
	mux.HandleFunc("POST /v1/keyring/{op}", a.postKeyring)
	a.faultRoutes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.gatherer(), promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s (see GET /v1/health, /v1/health/live, /v1/health/ready, /v1/members, /v1/states, /v1/kv/{key}, /v1/raft, /metrics)", r.Method, r.URL.Path))
	})
	bound := a.HTTPAddr()
	if bound == "" {
		bound = a.cfg.HTTPAddr
	}
	return newHostGuard(a.cfg, bound).guard(a.auth(mux))
}

// auth checks the bearer token in constant time when the agent has one;
// with http_public_probes the probes and /metrics need none (health.go).
func (a *Agent) auth(next http.Handler) http.Handler {
	if a.cfg.AdminToken == "" {
		return next
	}
	want := []byte("Bearer " + a.cfg.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.HTTPPublicProbes && publicProbe(r) {
			next.ServeHTTP(w, r)
			return
		}
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="dstate"`)
			msg := "missing bearer token: send Authorization: Bearer <token>"
			if len(got) > 0 {
				msg = "the bearer token does not match the agent's admin token"
			}
			writeError(w, http.StatusUnauthorized, errors.New(msg))
			return
		}
		next.ServeHTTP(w, r)
	})
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
	case errors.As(err, &tl):
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

func (a *Agent) getMembers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.Members())
}

func (a *Agent) getStates(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.States())
}

func (a *Agent) getState(w http.ResponseWriter, r *http.Request) {
	maxStale, err := duration(r, "max_staleness", 0)
	if err == nil {
		var consistent bool
		consistent, err = boolParam(r, "consistent")
		if err == nil {
			var d StateDump
			d, err = a.Dump(r.Context(), r.PathValue("name"), DumpOptions{Node: r.URL.Query().Get("node"), MaxStaleness: maxStale, Consistent: consistent})
			if err == nil {
				writeJSON(w, http.StatusOK, d)
				return
			}
		}
	}
	writeError(w, statusOf(err), err)
}

func kvState(r *http.Request) string {
	if s := r.URL.Query().Get("state"); s != "" {
		return s
	}
	return KVState
}

func (a *Agent) getKV(w http.ResponseWriter, r *http.Request) {
	v, err := a.GetKV(kvState(r), r.URL.Query().Get("node"), r.PathValue("key"))
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *Agent) putKV(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxRequestBytes()))
	if err != nil {
		a.bodyError(w, r, "value", err)
		return
	}
	a.writeKV(w, r, KVChange{Key: r.PathValue("key"), Value: string(body)})
}

func (a *Agent) delKV(w http.ResponseWriter, r *http.Request) {
	a.writeKV(w, r, KVChange{Key: r.PathValue("key"), Delete: true})
}

func (a *Agent) writeKV(w http.ResponseWriter, r *http.Request, c KVChange) {
	res, err := a.WriteKV(r.Context(), kvState(r), c)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// decodeBody decodes a JSON request body of at most max_request_bytes into
// v, refusing unknown fields.
func (a *Agent) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.maxRequestBytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.countOversizedRequest(r)
			return tooLarge{fmt.Errorf("request body is larger than max_request_bytes (%d bytes)", mbe.Limit)}
		}
		return badRequest{fmt.Errorf("request body is not a valid %T document: %v", v, err)}
	}
	return nil
}

// bodyError answers a request whose body could not be read.
func (a *Agent) bodyError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		a.countOversizedRequest(r)
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("%s is larger than max_request_bytes (%d bytes)", what, mbe.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, fmt.Errorf("%s: reading the request body: %w", what, err))
}

// countOversizedRequest counts a request over max_request_bytes and logs it
// once per client host per interval.
func (a *Agent) countOversizedRequest(r *http.Request) {
	a.oversizedRequests.Add(1)
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ok, suppressed := a.requestLog.Allow(host); ok {
		a.log.Warn("admin API: request body over max_request_bytes refused", "remote", r.RemoteAddr, "path", r.URL.Path,
			"limit", a.maxRequestBytes(), "suppressed", suppressed)
	}
}

func (a *Agent) postJoin(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	if len(req.Addrs) == 0 {
		writeError(w, http.StatusBadRequest, errors.New("addrs is empty: name at least one gossip address to join"))
		return
	}
	n, err := a.Join(req.Addrs)
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
func (a *Agent) postLeave(w http.ResponseWriter, r *http.Request) {
	a.stopping.Store(true)
	res, err := a.leaveCluster(context.WithoutCancel(r.Context()))
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%w; the agent left gossip and is shutting down", err))
	} else {
		writeJSON(w, http.StatusOK, res)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = a.Stop(ctx)
	}()
}

func (a *Agent) getRaft(w http.ResponseWriter, r *http.Request) {
	st, err := a.RaftStatus(r.Context())
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *Agent) postBootstrap(w http.ResponseWriter, r *http.Request) {
	var req BootstrapRequest
	if r.ContentLength != 0 {
		if err := a.decodeBody(w, r, &req); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
	}
	if err := a.Bootstrap(r.Context(), req.Servers); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

func (a *Agent) getKeyring(w http.ResponseWriter, _ *http.Request) {
	st, err := a.Keyring()
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *Agent) postKeyring(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	if op != "install" && op != "use" && op != "remove" {
		writeError(w, http.StatusNotFound, fmt.Errorf("keyring operation %q is not install, use or remove", op))
		return
	}
	var req KeyRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	if strings.TrimSpace(req.Key) == "" {
		writeError(w, http.StatusBadRequest, errors.New("key is empty"))
		return
	}
	if err := a.KeyringOp(op, req.Key); err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}
