package cli

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func forceLeaveCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "force-leave",
		Usage:     "force a failed member out of the cluster",
		UsageText: "dstatectl [global options] force-leave [--prune] <node>",
		ArgsUsage: "<node>",
		Description: "Marks a member that failed (crashed, or was never stopped cleanly) as left on every\n" +
			"member, as if it had left gracefully: the others stop reconnecting to it, drop its\n" +
			"views, and the Raft leader removes it from the Raft configuration. With --prune it\n" +
			"is also erased from the member list at once instead of staying listed as left.\n" +
			"A member that is alive is refused: stop it, or run 'dstatectl leave' on it.\n\n" +
			"Example:\n" +
			"   dstatectl force-leave n4\n" +
			"   dstatectl force-leave --prune n4",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "prune", Usage: "also erase the member from the member list"},
		},
		Action: runForceLeave,
	}
}

func runForceLeave(c *ucli.Context) error {
	if err := checkArgs(c, 1, 1, "the <node> to force out"); err != nil {
		return err
	}
	node := c.Args().First()
	if strings.TrimSpace(node) == "" {
		return usageErrorf("%s: empty node name", cmdName(c))
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	var res agent.ForceLeaveResult
	if _, err := cl.sendJSON(c.Context, http.MethodPost, "/v1/force-leave", nil, agent.ForceLeaveRequest{Node: node, Prune: c.Bool("prune")}, &res); err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, res)
	}
	how := "marked left"
	if res.Prune {
		how = "pruned from the member list"
	}
	fmt.Fprintf(c.App.Writer, "forced %s (%s) out of the cluster: %s\n", res.Node, orDash(res.Was), how)
	return nil
}
