package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// StateChange is one change to a state's views, as [Agent.Watch] reports
// it and the admin API streams it (GET /v1/states/{name}/watch).
type StateChange struct {
	State string `json:"state"`
	// Kind is "updated" (a new view, or in the initial list the view as
	// it stands), "removed" (the node left) or "failed" (membership
	// declared the node failed; its last view is kept).
	Kind string `json:"kind"`
	Node string `json:"node"`
	// Generation is the view's generation (v{incarnation}:{age}); empty
	// for a removed view.
	Generation  string `json:"generation,omitempty"`
	Incarnation uint64 `json:"incarnation,omitempty"`
	Age         uint64 `json:"age,omitempty"`
	// OldGeneration is the generation the watcher saw before, if any.
	OldGeneration string `json:"old_generation,omitempty"`
	// Initial marks the views listed when the watch started.
	Initial bool `json:"initial,omitempty"`
	// Skipped is true when generations between OldGeneration and
	// Generation were not delivered (the watcher fell behind, or asked
	// for the latest view only).
	Skipped    bool  `json:"skipped,omitempty"`
	ModifiedMs int64 `json:"modified_unix_ms,omitempty"`
	Value      any   `json:"value,omitempty"`
}

// WatchOptions configure [Agent.Watch].
type WatchOptions struct {
	// Node, when set, limits the watch to that node's view.
	Node string
	// Resume starts after these generations (by node) instead of with the
	// views as they stand; see [node.WatchOptions].
	Resume map[string]dstate.Generation
	// EveryGeneration delivers every generation observed, not only the
	// latest per node when several arrive at once.
	EveryGeneration bool
}

func (o WatchOptions) nodeOptions() node.WatchOptions {
	var no node.WatchOptions
	if o.Node != "" {
		no.Nodes = []dstate.NodeID{dstate.NodeID(o.Node)}
	}
	if o.Resume != nil {
		no.Resume = make(map[dstate.NodeID]dstate.Generation, len(o.Resume))
		for id, g := range o.Resume {
			no.Resume[dstate.NodeID(id)] = g
		}
	}
	no.EveryGeneration = o.EveryGeneration
	return no
}

// Watch reports the changes to a registered state's views: the views as
// they stand, then each change as it happens, until ctx ends (the
// sequence then yields ctx's error once). An unknown state is an error at
// once. See [node.Shard.Watch] for how a slow watcher is served.
func (a *Agent) Watch(ctx context.Context, state string, opts WatchOptions) (iter.Seq2[StateChange, error], error) {
	h, err := a.states.get(state)
	if err != nil {
		return nil, err
	}
	return h.watch(ctx, opts), nil
}

func (h *shardHandle[S, V]) watch(ctx context.Context, opts WatchOptions) iter.Seq2[StateChange, error] {
	name := h.shard.StateName()
	return func(yield func(StateChange, error) bool) {
		for c, err := range h.shard.Watch(ctx, opts.nodeOptions()) {
			if err != nil {
				yield(StateChange{}, err)
				return
			}
			sc := StateChange{State: name, Kind: c.Kind.String(), Node: string(c.Node), Initial: c.Initial, Skipped: c.Skipped}
			if !c.OldGeneration.IsZero() {
				sc.OldGeneration = c.OldGeneration.String()
			}
			if c.Kind != node.ViewRemoved && !c.Generation.IsZero() {
				sc.Generation, sc.Incarnation, sc.Age = c.Generation.String(), c.Generation.Incarnation, c.Generation.Age
			}
			if c.View != nil && c.Kind == node.ViewUpdated {
				sc.ModifiedMs, sc.Value = c.View.ModifiedUnixMs, c.View.Value
			}
			if !yield(sc, nil) {
				return
			}
		}
	}
}

// ParseGeneration reads a generation as [dstate.Generation.String] writes
// it (v{incarnation}:{age}).
func ParseGeneration(s string) (dstate.Generation, error) {
	rest, ok := strings.CutPrefix(s, "v")
	inc, age, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 {
		return dstate.Generation{}, fmt.Errorf("bad generation %q: want v<incarnation>:<age>", s)
	}
	i, err := strconv.ParseUint(inc, 10, 64)
	if err != nil {
		return dstate.Generation{}, fmt.Errorf("bad generation %q: incarnation: %w", s, err)
	}
	g, err := strconv.ParseUint(age, 10, 64)
	if err != nil {
		return dstate.Generation{}, fmt.Errorf("bad generation %q: age: %w", s, err)
	}
	return dstate.Generation{Incarnation: i, Age: g}, nil
}

// maxResumeNodes bounds the nodes a resume token may name.
const maxResumeNodes = 4096

// FormatResumeToken writes the generations a watcher has seen as the
// event ID the watch stream sends (node=v{incarnation}:{age},... in node
// order); a client that reconnects sends it back as Last-Event-ID.
func FormatResumeToken(seen map[string]dstate.Generation) string {
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id)
		b.WriteByte('=')
		b.WriteString(seen[id].String())
	}
	return b.String()
}

// ParseResumeToken reads a token written by [FormatResumeToken].
func ParseResumeToken(tok string) (map[string]dstate.Generation, error) {
	out := map[string]dstate.Generation{}
	if tok == "" {
		return out, nil
	}
	parts := strings.Split(tok, ",")
	if len(parts) > maxResumeNodes {
		return nil, fmt.Errorf("resume token names %d nodes, more than %d", len(parts), maxResumeNodes)
	}
	for _, p := range parts {
		id, gen, ok := strings.Cut(p, "=")
		if !ok || id == "" {
			return nil, fmt.Errorf("bad resume token entry %q: want node=v<incarnation>:<age>", p)
		}
		g, err := ParseGeneration(gen)
		if err != nil {
			return nil, fmt.Errorf("resume token entry for %q: %w", id, err)
		}
		out[id] = g
	}
	return out, nil
}

// watchKeepAlive is how often an idle watch stream sends a comment line,
// so that proxies keep it open and a gone client is noticed.
const watchKeepAlive = 15 * time.Second

// isWatch reports whether r asks for a watch stream.
func isWatch(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/states/") && strings.HasSuffix(r.URL.Path, "/watch")
}

// serveWatch streams a state's changes as Server-Sent Events: one event
// "change" per change, its data the StateChange as JSON and its ID the
// resume token; a client that reconnects with Last-Event-ID (or
// ?resume=) gets only what it has not seen. ?node= limits the stream to
// one node's view, ?every=true asks for every generation.
func serveWatch(w http.ResponseWriter, r *http.Request, watch func(context.Context, WatchOptions) (iter.Seq2[StateChange, error], error)) {
	q := r.URL.Query()
	opts := WatchOptions{Node: q.Get("node")}
	every, err := boolParam(r, "every")
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	opts.EveryGeneration = every
	tok := r.Header.Get("Last-Event-ID")
	if tok == "" {
		tok = q.Get("resume")
	}
	if tok != "" {
		resume, err := ParseResumeToken(tok)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		opts.Resume = resume
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	changes, err := watch(ctx, opts)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	rc := http.NewResponseController(w)
	// The request has been read: the read timeout must not end the stream
	// (it would cancel the request's context).
	_ = rc.SetReadDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The server's write timeout bounds each write, not the stream.
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(watchKeepAlive + 10*time.Second)) }
	extend()
	_, _ = w.Write([]byte(": watching\n\n"))
	if rc.Flush() != nil {
		return
	}
	seen := map[string]dstate.Generation{}
	for id, g := range opts.Resume {
		seen[id] = g
	}
	// Changes come from a goroutine so that the stream can send keep-alive
	// comments while nothing changes.
	type item struct {
		c   StateChange
		err error
	}
	ch := make(chan item)
	go func() {
		defer close(ch)
		for c, err := range changes {
			select {
			case ch <- item{c, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(watchKeepAlive)
	defer tick.Stop()
	for {
		select {
		case it, ok := <-ch:
			if !ok || it.err != nil {
				return
			}
			c := it.c
			switch c.Kind {
			case "removed":
				delete(seen, c.Node)
			default:
				if c.Generation != "" {
					seen[c.Node] = dstate.Generation{Incarnation: c.Incarnation, Age: c.Age}
				}
			}
			data, err := json.Marshal(c)
			if err != nil {
				data, _ = json.Marshal(StateChange{State: c.State, Kind: c.Kind, Node: c.Node, Generation: c.Generation,
					Value: fmt.Sprintf("(value not encodable as JSON: %v)", err)})
			}
			extend()
			if _, err := fmt.Fprintf(w, "id: %s\nevent: change\ndata: %s\n\n", FormatResumeToken(seen), data); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		case <-tick.C:
			extend()
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil || rc.Flush() != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}
