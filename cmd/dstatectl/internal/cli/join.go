package cli

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func joinCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "join",
		Usage:     "make the agent join a cluster through one or more seed members",
		UsageText: "dstatectl [global options] join <addr>...",
		ArgsUsage: "<addr>...",
		Description: "Asks the agent to join the cluster that the seed members belong to. Each <addr> is\n" +
			"a member's gossip address (host:port); the host may be a name, and every address it\n" +
			"resolves to is tried. The command succeeds when at least one seed was reached.\n\n" +
			"Example:\n" +
			"   dstatectl join 10.0.0.1:7946 10.0.0.2:7946",
		Action: runJoin,
	}
}

func runJoin(c *ucli.Context) error {
	if err := checkArgs(c, 1, -1, "one seed <addr>"); err != nil {
		return err
	}
	addrs := c.Args().Slice()
	for _, a := range addrs {
		if strings.TrimSpace(a) == "" {
			return usageErrorf("%s: empty seed address", cmdName(c))
		}
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	var res agent.JoinResult
	if _, err := cl.sendJSON(c.Context, http.MethodPost, "/v1/join", nil, agent.JoinRequest{Addrs: addrs}, &res); err != nil {
		return err
	}
	if format == formatJSON {
		if err := writeJSON(c.App.Writer, res); err != nil {
			return err
		}
	} else if res.Joined > 0 {
		fmt.Fprintf(c.App.Writer, "joined the cluster through %d of %d seeds\n", res.Joined, len(addrs))
	}
	if res.Joined == 0 {
		return errors.New("join: no seed could be reached: " + strings.Join(addrs, ", "))
	}
	return nil
}
