package cli

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func bootstrapCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "bootstrap",
		Usage:     "create the Raft group that stores durable states (once per cluster)",
		UsageText: "dstatectl [global options] bootstrap [--server ID=ADDR ...]",
		Description: "Bootstraps the Raft group with the given servers, each as id=raftaddr or a bare\n" +
			"node ID whose Raft address the agent learns from membership; without --server the\n" +
			"agent bootstraps a group of itself alone. Run it on one agent only. Running it again\n" +
			"on a group that already exists is harmless and changes nothing.\n\n" +
			"Example:\n" +
			"   dstatectl bootstrap\n" +
			"   dstatectl bootstrap --server n1=10.0.0.1:7381 --server n2=10.0.0.2:7381 --server n3",
		Flags: []ucli.Flag{
			&ucli.StringSliceFlag{Name: "server", Usage: "a voter of the new group as `ID=ADDR` or a bare ID; repeat for each"},
		},
		Action: runBootstrap,
	}
}

func runBootstrap(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	servers := c.StringSlice("server")
	seen := map[string]bool{}
	for _, s := range servers {
		id, addr, hasAddr := strings.Cut(s, "=")
		switch {
		case strings.TrimSpace(id) == "":
			return usageErrorf("--server %q: missing the server ID (want ID=ADDR or ID)", s)
		case hasAddr && strings.TrimSpace(addr) == "":
			return usageErrorf("--server %q: missing the address after '=' (want ID=ADDR or ID)", s)
		case seen[id]:
			return usageErrorf("--server %q: server %s is listed twice", s, id)
		}
		seen[id] = true
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	if servers == nil {
		servers = []string{}
	}
	var res agent.BootstrapResult
	if _, err := cl.sendJSON(c.Context, http.MethodPost, "/v1/raft/bootstrap", nil, agent.BootstrapRequest{Servers: servers}, &res); err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, res)
	}
	list := strings.Join(res.Servers, ", ")
	if list == "" {
		list = "-"
	}
	if res.Bootstrapped {
		fmt.Fprintf(c.App.Writer, "bootstrapped the Raft group with %s: %s\n", plural(len(res.Servers), "server"), list)
	} else {
		fmt.Fprintf(c.App.Writer, "the Raft group already exists; nothing changed (%s: %s)\n", plural(len(res.Servers), "server"), list)
	}
	return nil
}
