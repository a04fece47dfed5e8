package agent

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/internal/ratelog"
)

// The admin API's connection limits: what a slow or idle client may hold.
// Zero in the config means these defaults.
const (
	// DefaultHTTPReadTimeout bounds reading one request, headers and
	// body (and the TLS handshake over HTTPS).
	DefaultHTTPReadTimeout = 10 * time.Second
	// DefaultHTTPWriteTimeout bounds one request from the end of its
	// headers to the end of its answer; the handler's context ends then
	// too. No endpoint streams, so nothing needs longer.
	DefaultHTTPWriteTimeout = time.Minute
	// DefaultHTTPIdleTimeout bounds a keep-alive connection's wait for
	// its next request.
	DefaultHTTPIdleTimeout = time.Minute
	// DefaultHTTPMaxConns bounds the admin API's open connections.
	DefaultHTTPMaxConns = 256
	// DefaultHTTPMaxConnsPerHost bounds the open connections from one
	// client IP address.
	DefaultHTTPMaxConnsPerHost = 64
	// httpMaxHeaderBytes bounds a request's header block.
	httpMaxHeaderBytes = 64 << 10
)

// newHTTPServer returns the admin API's server with the config's timeouts
// and header limit.
func (s *apiServer) newHTTPServer() *http.Server {
	read := cmp.Or(time.Duration(s.cfg.HTTPReadTimeout), DefaultHTTPReadTimeout)
	write := cmp.Or(time.Duration(s.cfg.HTTPWriteTimeout), DefaultHTTPWriteTimeout)
	h := s.handler()
	return &http.Server{
		// The handler's context ends with the write timeout: an answer
		// after it could not be delivered anyway.
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isWatch(r) {
				// A watch stream has no end: it extends its own write
				// deadline per event (watch.go).
				h.ServeHTTP(w, r)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), write)
			defer cancel()
			// A client that says how long it waits gets the agent's
			// answer within that time (deadline.go).
			r, stop, ok := withClientTimeout(w, r.WithContext(ctx))
			defer stop()
			if ok {
				h.ServeHTTP(w, r)
			}
		}),
		ReadHeaderTimeout: read,
		ReadTimeout:       read,
		WriteTimeout:      write,
		IdleTimeout:       cmp.Or(time.Duration(s.cfg.HTTPIdleTimeout), DefaultHTTPIdleTimeout),
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// connLimiter is the admin API's listener: it closes a new connection at
// once when the API already holds http_max_conns, or http_max_conns_per_host
// from the connection's IP address, and counts the connections a read
// deadline cut in the middle of a request. Each refusal is counted and
// logged at most once per client address and limit per limit_log_interval.
type connLimiter struct {
	net.Listener
	max, perHost int
	log          *slog.Logger
	warn         ratelog.Limiter

	mu    sync.Mutex
	open  int
	hosts map[string]int

	refusedTotal atomic.Uint64 // over http_max_conns
	refusedHost  atomic.Uint64 // over http_max_conns_per_host
	readTimeouts atomic.Uint64 // cut by http_read_timeout mid-request
}

// newConnLimiter wraps ln (the plain TCP listener, under any TLS) with
// cfg's connection caps.
func newConnLimiter(cfg Config, log *slog.Logger, ln net.Listener) *connLimiter {
	return &connLimiter{
		Listener: ln,
		max:      cmp.Or(cfg.HTTPMaxConns, DefaultHTTPMaxConns),
		perHost:  cmp.Or(cfg.HTTPMaxConnsPerHost, DefaultHTTPMaxConnsPerHost),
		log:      log,
		warn:     ratelog.Limiter{Interval: time.Duration(cfg.LimitLogInterval)},
		hosts:    map[string]int{},
	}
}

// Accept returns the next connection within the caps, closing those over
// them.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := remoteHost(c.RemoteAddr())
		if limit := l.admit(host); limit != "" {
			_ = c.Close()
			l.refused(c.RemoteAddr(), host, limit)
			continue
		}
		return &limitedConn{Conn: c, l: l, host: host}, nil
	}
}

// admit takes a slot for a connection from host, or names the limit that
// refuses it.
func (l *connLimiter) admit(host string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.open >= l.max:
		l.refusedTotal.Add(1)
		return "http_max_conns"
	case l.hosts[host] >= l.perHost:
		l.refusedHost.Add(1)
		return "http_max_conns_per_host"
	}
	l.open++
	l.hosts[host]++
	return ""
}

// release gives back a connection's slot.
func (l *connLimiter) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.hosts[host]--; l.hosts[host] <= 0 {
		delete(l.hosts, host)
	}
}

// refused logs a refused connection, at most once per host and limit per
// interval.
func (l *connLimiter) refused(remote net.Addr, host, limit string) {
	if ok, suppressed := l.warn.Allow(host + " " + limit); ok {
		cap := l.max
		if limit == "http_max_conns_per_host" {
			cap = l.perHost
		}
		l.log.Warn("admin API: connection refused over "+limit, "remote", remote.String(), "limit", cap, "suppressed", suppressed)
	}
}

// timedOut counts and logs a connection a read deadline cut mid-request.
func (l *connLimiter) timedOut(remote net.Addr, host string) {
	l.readTimeouts.Add(1)
	if ok, suppressed := l.warn.Allow(host + " http_read_timeout"); ok {
		l.log.Warn("admin API: connection cut: request not received within http_read_timeout", "remote", remote.String(), "suppressed", suppressed)
	}
}

// remoteHost is the IP address of a connection's peer.
func remoteHost(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// limitedConn holds one slot of its connLimiter until closed and tells it
// when a read deadline cuts a request short. net/http reads and writes a
// connection from two goroutines at times, hence the atomics.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	host string

	// inRequest is set by bytes read and cleared by bytes written: a
	// read deadline while it is set (or before anything was written)
	// cut a request short; otherwise it ended an idle keep-alive wait.
	inRequest atomic.Bool
	wrote     atomic.Bool
	counted   atomic.Bool
	closed    atomic.Bool
}

// Read reads from the connection, noting a request cut by a deadline.
func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.inRequest.Store(true)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && (c.inRequest.Load() || !c.wrote.Load()) && c.counted.CompareAndSwap(false, true) {
		c.l.timedOut(c.RemoteAddr(), c.host)
	}
	return n, err
}

// Write writes to the connection; an answer ends the request.
func (c *limitedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.wrote.Store(true)
		c.inRequest.Store(false)
	}
	return n, err
}

// Close closes the connection and gives back its slot once.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.host)
	}
	return err
}
