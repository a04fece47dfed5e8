package cli

import (
	"fmt"
	"net/http"

	ucli "github.com/urfave/cli/v2"
)

func leaveCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "leave",
		Usage:     "make the agent leave the cluster gracefully and shut down",
		UsageText: "dstatectl [global options] leave",
		Description: "Asks the agent to announce that it leaves (so peers drop its views at once instead\n" +
			"of suspecting a failure) and to shut down.\n\n" +
			"Example:\n" +
			"   dstatectl --addr 10.0.0.3:7380 leave",
		Action: runLeave,
	}
}

func runLeave(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	if _, err := cl.sendJSON(c.Context, http.MethodPost, "/v1/leave", nil, nil, nil); err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, struct{}{})
	}
	fmt.Fprintf(c.App.Writer, "the agent at %s is leaving the cluster and shutting down\n", cl.base)
	return nil
}
