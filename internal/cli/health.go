package cli

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

// statusHealthy is the one health status that makes `health` succeed.
const statusHealthy = "healthy"

func healthCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "health",
		Usage:     "show the node's health; exit status 1 unless healthy",
		UsageText: "dstatectl [global options] health [--max-staleness DURATION]",
		Description: "Shows the health of every registered state on the agent's node: how many peers are\n" +
			"in sync, stale or failing. The exit status is 0 when the node is healthy and 1 when it\n" +
			"is degraded, unhealthy or cannot be reached, so the command fits liveness checks.\n" +
			"--max-staleness sets how old a peer's view may be before it counts as stale.\n\n" +
			"Example:\n" +
			"   dstatectl health\n" +
			"   dstatectl health --max-staleness 5s || echo 'node needs attention'",
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "max-staleness", Usage: "a peer's view older than `DURATION` counts as stale", DefaultText: "the agent's setting"},
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
		return err
	}
	if h.States == nil {
		h.States = []agent.StateHealth{}
	}
	if format == formatJSON {
		if err := writeJSON(c.App.Writer, h); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.App.Writer, "node %s is %s\n", orDash(h.Node), orDash(h.Status))
		if len(h.States) > 0 {
			t := newTable(c.App.Writer, "STATE", "STATUS", "HEALTHY", "STALE", "FAILING")
			for _, s := range h.States {
				t.row(s.State, s.Status, strconv.Itoa(s.HealthyPeers), strconv.Itoa(s.StalePeers), strconv.Itoa(s.FailingPeers))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	if h.Status != statusHealthy {
		return &exitStatus{code: 1, err: fmt.Errorf("health: node %s is %s", orDash(h.Node), orDash(h.Status))}
	}
	return nil
}
