package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

// Exit statuses of `health` besides 0 (healthy) and 2 (usage).
const (
	exitUnhealthy = 1 // unhealthy, or the agent could not be asked
	exitDegraded  = 3
)

func healthCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "health",
		Usage:     "show the node's view of the cluster's health; exit status 0 healthy, 3 degraded, 1 unhealthy",
		UsageText: "dstatectl [global options] health [--max-staleness DURATION]",
		Description: "Shows this node's view of the cluster: for every registered state, how many peers\n" +
			"are in sync, stale (a view not renewed on the state's own sync schedule) or failing,\n" +
			"naming the stale and failing ones; the Raft group (leader, term, voters, last contact);\n" +
			"and the servers whose Raft handshake failed. Each peer counts once per state.\n\n" +
			"Exit status: 0 healthy; 3 degraded (some peers are stale or failing, or a server is\n" +
			"unreachable, while this node serves); 1 unhealthy (this node is not ready, or it and\n" +
			"the peers in sync with it are not a majority) or the agent cannot be asked; 2 on a\n" +
			"usage error. The agent answers GET /v1/health with 200 when healthy or degraded and\n" +
			"503 when unhealthy.\n\n" +
			"This is a monitoring check, not a probe: one node down makes every other node\n" +
			"degraded. Use GET /v1/health/live for liveness probes (200 while the agent runs) and\n" +
			"GET /v1/health/ready for readiness probes and load balancers (200 when the node's\n" +
			"states are loaded and, on a server, a Raft leader is known).\n\n" +
			"--max-staleness judges every view against that bound instead of its state's schedule,\n" +
			"and counts a newer generation announced but not received as stale too.\n\n" +
			"Example:\n" +
			"   dstatectl health\n" +
			"   dstatectl health --max-staleness 2s || echo 'node needs attention'",
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "max-staleness", Usage: "a peer's view older than `DURATION` counts as stale", DefaultText: "each state's sync schedule"},
		},
		Action: runHealth,
	}
}

func runHealth(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	q := url.Values{}
	if c.IsSet("max-staleness") {
		d := c.Duration("max-staleness")
		if d < 0 {
			return usageErrorf("--max-staleness: must not be negative, got %s", d)
		}
		q.Set("max_staleness", d.String())
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	var h agent.Health
	if err := cl.getJSON(c.Context, "/v1/health", q, &h); err != nil {
		// An unhealthy node answers 503 with its report.
		var ae *agentError
		if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || cl.decode("/v1/health", ae.Body, &h) != nil || h.Status == "" {
			return err
		}
	}
	if h.States == nil {
		h.States = []agent.StateHealth{}
	}
	if format == formatJSON {
		if err := writeJSON(c.App.Writer, h); err != nil {
			return err
		}
	} else if err := writeHealth(c.App.Writer, h); err != nil {
		return err
	}
	switch h.Status {
	case agent.StatusHealthy:
		return nil
	case agent.StatusDegraded:
		return &exitStatus{code: exitDegraded, err: fmt.Errorf("health: node %s is degraded", orDash(h.Node))}
	}
	return &exitStatus{code: exitUnhealthy, err: fmt.Errorf("health: node %s is %s", orDash(h.Node), orDash(h.Status))}
}

// writeHealth writes the report as tables.
func writeHealth(w io.Writer, h agent.Health) error {
	ready := "ready"
	if !h.Ready {
		ready = "not ready"
	}
	fmt.Fprintf(w, "node %s is %s (%s)\n", orDash(h.Node), orDash(h.Status), ready)
	for _, r := range h.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	if len(h.States) > 0 {
		t := newTable(w, "STATE", "STATUS", "HEALTHY", "STALE", "FAILING", "STALE AFTER")
		for _, s := range h.States {
			after := "-"
			if s.StaleAfterMs > 0 {
				after = (time.Duration(s.StaleAfterMs) * time.Millisecond).String()
			}
			t.row(s.State, s.Status, strconv.Itoa(s.HealthyPeers), strconv.Itoa(s.StalePeers), strconv.Itoa(s.FailingPeers), after)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	var peers [][]string
	for _, s := range h.States {
		for _, p := range s.Failing {
			peers = append(peers, []string{s.State, p.Node, "failing", syncedAgo(p.SyncedAgoMs), p.Reason})
		}
		for _, p := range s.Stale {
			peers = append(peers, []string{s.State, p.Node, "stale", syncedAgo(p.SyncedAgoMs), p.Reason})
		}
	}
	if len(peers) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "STATE", "PEER", "CLASS", "SYNCED", "REASON")
		for _, p := range peers {
			t.row(p...)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if r := h.Raft; r != nil {
		contact := "never"
		switch {
		case r.State == "leader":
			contact = "leads"
		case r.LastContactMs >= 0:
			contact = (time.Duration(r.LastContactMs) * time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(w, "\nraft: leader %s, term %d, voters %s; this server: %s, last contact with the leader %s\n",
			orDash(r.Leader), r.Term, orDash(strings.Join(r.Voters, " ")), orDash(r.State), contact)
		if r.Error != "" {
			fmt.Fprintf(w, "raft configuration: %s\n", r.Error)
		}
	}
	if len(h.UnreachableServers) > 0 {
		fmt.Fprintln(w)
		t := newTable(w, "UNREACHABLE SERVER", "ADDRESS", "REASON")
		for _, u := range h.UnreachableServers {
			t.row(u.ID, u.Address, u.Reason)
		}
		return t.flush()
	}
	return nil
}

// syncedAgo renders PeerHealth.SyncedAgoMs.
func syncedAgo(ms int64) string {
	if ms < 0 {
		return "never"
	}
	return (time.Duration(ms) * time.Millisecond).Round(time.Millisecond).String() + " ago"
}
