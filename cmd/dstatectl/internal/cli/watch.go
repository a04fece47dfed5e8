package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dstate-go/dstate/pkg/agent"
)

func watchCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "watch",
		Usage:     "print the changes to a state's views as they happen, until interrupted",
		UsageText: "dstatectl [global options] watch [--node NAME] [--every] [--since-now] <state>",
		ArgsUsage: "<state>",
		Description: "Lists each node's view of the state as it stands, then prints every change as it\n" +
			"happens: a new generation of a view (updated), a node that left (removed) or one\n" +
			"membership declared failed (failed). A watcher that falls behind is sent the latest\n" +
			"view of each node, marked skipped. When the connection to the agent drops, watch\n" +
			"reconnects and resumes where it was; Ctrl-C ends it. In JSON (--format json) each\n" +
			"change is one line.\n\n" +
			"Example:\n" +
			"   dstatectl watch kv\n" +
			"   dstatectl --format json watch --node n2 durable-kv",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "node", Usage: "watch only the view of node `NAME`"},
			&ucli.BoolFlag{Name: "every", Usage: "print every generation, not only the latest when several arrive at once", DisableDefaultText: true},
			&ucli.BoolFlag{Name: "since-now", Usage: "skip the views as they stand: print only what changes from now on", DisableDefaultText: true},
		},
		Action: runWatch,
	}
}

// watchRetry is how long watch waits before reconnecting to an agent that
// dropped the stream or could not be reached.
const watchRetry = time.Second

func runWatch(c *ucli.Context) error {
	if err := checkArgs(c, 1, 1, "one <state>"); err != nil {
		return err
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	state := c.Args().First()
	q := url.Values{}
	if n := c.String("node"); n != "" {
		q.Set("node", n)
	}
	if c.Bool("every") {
		q.Set("every", "true")
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A resumed stream lists no views as they stand (the token says what
	// was seen), so --since-now only matters for the first connection.
	skipInitial := c.Bool("since-now")
	resume := ""
	connected := false
	for {
		err := cl.watch(ctx, state, q, resume, func(id string, ch agent.StateChange) error {
			resume = id
			if skipInitial && ch.Initial {
				return nil
			}
			return printChange(c.App.Writer, format, ch)
		}, func() {
			if connected {
				fmt.Fprintf(c.App.ErrWriter, "dstatectl: watch: reconnected to %s\n", cl.base)
			}
			connected = true
		})
		if ctx.Err() != nil {
			return nil // interrupted: the normal end
		}
		var ae *agentError
		if errors.As(err, &ae) {
			return err // the agent refused (unknown state, bad token): retrying will not help
		}
		// The stream ended or the agent is unreachable: resume after a
		// pause (the agent may be restarting).
		fmt.Fprintf(c.App.ErrWriter, "dstatectl: watch: %v; reconnecting in %s\n", watchEndReason(err), watchRetry)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchRetry):
		}
	}
}

func watchEndReason(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return "the agent ended the stream"
	}
	return err.Error()
}

// printChange prints one change: a line of text, or one JSON object.
func printChange(w io.Writer, format string, ch agent.StateChange) error {
	if format == formatJSON {
		b, err := json.Marshal(ch)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-8s %-12s %s", ch.Kind, ch.Node, ch.Generation)
	if ch.Initial {
		b.WriteString(" (as it stands)")
	}
	if ch.Skipped {
		fmt.Fprintf(&b, " (skipped generations after %s)", ch.OldGeneration)
	}
	if ch.Kind == "updated" {
		v, err := json.Marshal(ch.Value)
		if err != nil {
			v = []byte(fmt.Sprint(ch.Value))
		}
		fmt.Fprintf(&b, " %s", v)
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// maxEventLine bounds one line of the event stream (a view as JSON).
const maxEventLine = maxResponse

// watch streams a state's changes from the agent's watch endpoint,
// calling fn with each change and the resume token that follows it, and
// connected once the agent accepted the stream. It returns when the
// stream ends (nil or a transport error), fn fails, or ctx ends.
func (cl *client) watch(ctx context.Context, state string, q url.Values, resume string, fn func(id string, ch agent.StateChange) error, connected func()) error {
	req, err := cl.newRequest(ctx, http.MethodGet, "/v1/states/"+escape(state)+"/watch", q, nil, "text/event-stream")
	if err != nil {
		return err
	}
	if resume != "" {
		req.Header.Set("Last-Event-ID", resume)
	}
	// The stream has no end: no overall timeout, but the connection and
	// the answer's headers are bounded by --timeout.
	hc := *cl.hc
	hc.Timeout = 0
	if tr, ok := hc.Transport.(*http.Transport); ok {
		tr = tr.Clone()
		tr.ResponseHeaderTimeout = cl.timeout
		hc.Transport = tr
	}
	resp, err := hc.Do(req)
	if err != nil {
		return cl.transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		return &agentError{Addr: cl.base, Status: resp.StatusCode, Message: errorMessage(data), Body: data, tokenSet: cl.token != ""}
	}
	connected()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	var id, event string
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event == "change" && data.Len() > 0 {
				var ch agent.StateChange
				if err := json.Unmarshal([]byte(data.String()), &ch); err != nil {
					return fmt.Errorf("the agent sent a change that is not valid JSON: %w", err)
				}
				if err := fn(id, ch); err != nil {
					return err
				}
			}
			event = ""
			data.Reset()
		case strings.HasPrefix(line, ":"):
			// a comment: the stream's keep-alive
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return cl.transportError(err)
	}
	return io.EOF
}
