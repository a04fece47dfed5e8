package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dstate-go/dstate/internal/tokenfile"
	"github.com/dstate-go/dstate/pkg/agent"
)

// maxResponse bounds what the client reads of one answer.
const maxResponse = 64 << 20

// answerGrace is how much longer than --timeout the client waits for an
// answer: the agent is told --timeout (agent.TimeoutHeader) and ends its
// work by then, so its own error ("no Raft leader yet", "lost quorum")
// arrives before the client gives up.
const answerGrace = 2 * time.Second

// client talks to one agent's HTTP admin API (the contract in pkg/agent's
// api.go). It is made per command from the global flags.
type client struct {
	base    string // scheme://host[:port][/prefix], no trailing slash
	token   string
	timeout time.Duration
	hc      *http.Client
}

// newClient returns a client for the agent named by --addr, --token (or
// --token-file) and --timeout; a malformed address or timeout is a usage
// error.
func newClient(c *ucli.Context) (*client, error) {
	base, err := normalizeAddr(c.String(flagAddr))
	if err != nil {
		return nil, usageError{fmt.Errorf("--addr: %w", err)}
	}
	timeout := c.Duration(flagTimeout)
	if timeout <= 0 {
		return nil, usageErrorf("--timeout: must be positive, got %s", timeout)
	}
	token := c.String(flagToken)
	if token == "" {
		if path := c.String(flagTokenFile); path != "" {
			if token, err = readTokenFile(path); err != nil {
				return nil, err
			}
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // one command, a few requests: leave nothing behind
	if path := c.String(flagCAFile); path != "" {
		pool, err := readCAFile(path)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &client{
		base:    base,
		token:   token,
		timeout: timeout,
		hc:      &http.Client{Timeout: timeout + answerGrace, Transport: tr},
	}, nil
}

// readCAFile reads the PEM certificates of --ca-file into a pool.
func readCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca-file %s: %v", path, unwrapPathError(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("--ca-file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// readTokenFile reads the bearer token of --token-file.
func readTokenFile(path string) (string, error) {
	tok, err := tokenfile.Read(path)
	if err != nil {
		return "", fmt.Errorf("--token-file %s: %w", path, err)
	}
	return tok, nil
}

// normalizeAddr turns "host:port" or a URL into the base URL of the API.
func normalizeAddr(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		addr = DefaultAddr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "", fmt.Errorf("not an address: %q", addr)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("scheme %q not supported (want http or https): %q", u.Scheme, addr)
	}
	if u.Host == "" {
		return "", fmt.Errorf("no host in %q", addr)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("want scheme://host:port, got %q", addr)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

// agentError is an error status from the agent, with the message of its
// APIError body.
type agentError struct {
	Addr     string
	Status   int
	Message  string
	Body     []byte // the answer as sent (health's 503 carries its report)
	tokenSet bool
}

func (e *agentError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		if !e.tokenSet {
			return fmt.Sprintf("agent at %s requires a token (%d): %s; pass --token or --token-file, or set DSTATE_TOKEN", e.Addr, e.Status, msg)
		}
		return fmt.Sprintf("agent at %s refused the token (%d): %s", e.Addr, e.Status, msg)
	}
	return fmt.Sprintf("agent at %s answered %d %s: %s", e.Addr, e.Status, http.StatusText(e.Status), msg)
}

// unreachableError is an agent that could not be connected to.
type unreachableError struct {
	Addr string
	Err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the agent at %s: is `dstatectl agent` running? (%v)", e.Addr, e.Err)
}

func (e *unreachableError) Unwrap() error { return e.Err }

// timeoutError is an agent that did not answer in time.
type timeoutError struct {
	Addr    string
	Timeout time.Duration
	Err     error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("the agent at %s did not answer within %s (--timeout) plus %s for its answer (raise --timeout?)", e.Addr, e.Timeout, answerGrace)
}

func (e *timeoutError) Unwrap() error { return e.Err }

// do performs one request and returns the body of a 2xx answer; any other
// status becomes an *agentError. A state-changing call (not GET or HEAD)
// without a contentType is sent as application/json, which the agent
// requires of every such call.
func (cl *client) do(ctx context.Context, method, path string, q url.Values, body []byte, contentType string) ([]byte, int, error) {
	return cl.doAccept(ctx, method, path, q, body, contentType, "application/json")
}

// newRequest builds a request to the agent's path with the query q, the
// Accept header, the client's User-Agent and its token.
func (cl *client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader, accept string) (*http.Request, error) {
	u := cl.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("building request %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "dstatectl/"+Version)
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	return req, nil
}

// doAccept is do with an Accept header other than JSON.
func (cl *client) doAccept(ctx context.Context, method, path string, q url.Values, body []byte, contentType, accept string) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := cl.newRequest(ctx, method, path, q, rd, accept)
	if err != nil {
		return nil, 0, err
	}
	if contentType == "" && method != http.MethodGet && method != http.MethodHead {
		// The agent refuses a state-changing call without it, body or
		// not: it is what a browser page cannot send cross-site.
		contentType = "application/json"
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set(agent.TimeoutHeader, cl.timeout.String())
	resp, err := cl.hc.Do(req)
	if err != nil {
		return nil, 0, cl.transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, resp.StatusCode, cl.transportError(err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, resp.StatusCode, &agentError{
			Addr:     cl.base,
			Status:   resp.StatusCode,
			Message:  errorMessage(data),
			Body:     data,
			tokenSet: cl.token != "",
		}
	}
	return data, resp.StatusCode, nil
}

// errorMessage extracts the message of an APIError body, or a short form of
// whatever else the server sent.
func errorMessage(data []byte) string {
	var ae agent.APIError
	if err := json.Unmarshal(data, &ae); err == nil && ae.Error != "" {
		return ae.Error
	}
	s := strings.TrimSpace(string(data))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// transportError classifies a failed exchange.
func (cl *client) transportError(err error) error {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &op) && op.Op == "dial", errors.As(err, &dns):
		return &unreachableError{Addr: cl.base, Err: errors.Unwrap(err)}
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return &timeoutError{Addr: cl.base, Timeout: cl.timeout, Err: err}
	}
	return fmt.Errorf("talking to the agent at %s: %w", cl.base, err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// getJSON decodes the answer to GET path into out.
func (cl *client) getJSON(ctx context.Context, path string, q url.Values, out any) error {
	data, _, err := cl.do(ctx, http.MethodGet, path, q, nil, "")
	if err != nil {
		return err
	}
	return cl.decode(path, data, out)
}

// sendJSON sends in (nil: no body) with method and decodes the answer into
// out (nil: ignored).
func (cl *client) sendJSON(ctx context.Context, method, path string, q url.Values, in, out any) (int, error) {
	var body []byte
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encoding request to %s: %w", path, err)
		}
		body, ctype = b, "application/json"
	}
	data, status, err := cl.do(ctx, method, path, q, body, ctype)
	if err != nil {
		return status, err
	}
	if out == nil {
		return status, nil
	}
	return status, cl.decode(path, data, out)
}

func (cl *client) decode(path string, data []byte, out any) error {
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("agent at %s sent an unreadable answer to %s (is it a dstate agent?): %w", cl.base, path, err)
	}
	return nil
}

// escape makes one path segment of a key or state name.
func escape(segment string) string { return url.PathEscape(segment) }
