package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// TimeoutHeader is the request header in which a client says how long it
// waits for the answer, as a Go duration ("10s"). The agent ends the
// request's work by then and answers with what stopped it (a Raft store
// without a leader says so), so a client that waits a little longer than
// it announced sees the agent's error rather than its own timeout.
// dstatectl sends its --timeout in it.
const TimeoutHeader = "Dstate-Timeout"

// withClientTimeout bounds r's context by the TimeoutHeader it carries;
// ok is false (and an error answered) when the header is not a positive
// duration.
func withClientTimeout(w http.ResponseWriter, r *http.Request) (_ *http.Request, cancel context.CancelFunc, ok bool) {
	v := r.Header.Get(TimeoutHeader)
	if v == "" {
		return r, func() {}, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Errorf("header %s: want a positive duration such as 10s, got %q", TimeoutHeader, v))
		return r, func() {}, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	return r.WithContext(ctx), cancel, true
}
