package cli

import (
	"net/http"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func delCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "del",
		Usage:     "delete one key of a key-value state on the agent's node",
		UsageText: "dstatectl [global options] del [--state STATE] <key>",
		ArgsUsage: "<key>",
		Description: "Removes <key> from the agent's own copy of the state; the removal replicates like\n" +
			"any other change.\n\n" +
			"Example:\n" +
			"   dstatectl del user:42\n" +
			"   dstatectl del --state durable-kv config/limit",
		Flags:  []ucli.Flag{stateFlag()},
		Action: runDel,
	}
}

func runDel(c *ucli.Context) error {
	if err := checkArgs(c, 1, 1, "one <key>"); err != nil {
		return err
	}
	key := c.Args().First()
	if err := checkKey(c, key); err != nil {
		return err
	}
	q, err := kvQuery(c)
	if err != nil {
		return err
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	var res agent.WriteResult
	if _, err := cl.sendJSON(c.Context, http.MethodDelete, "/v1/kv/"+escape(key), q, nil, &res); err != nil {
		return err
	}
	return printWrite(c, format, "deleted", res)
}
