package cli

import (
	"net/http"

	ucli "github.com/urfave/cli/v2"
)

func metricsCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "metrics",
		Usage:     "print the agent's Prometheus metrics",
		UsageText: "dstatectl [global options] metrics",
		Description: "Prints the agent's /metrics page (Prometheus text format) as it is; --format does\n" +
			"not apply.\n\n" +
			"Example:\n" +
			"   dstatectl metrics | grep dstate_sync",
		Action: runMetrics,
	}
}

func runMetrics(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	cl, _, err := setup(c)
	if err != nil {
		return err
	}
	data, _, err := cl.doAccept(c.Context, http.MethodGet, "/metrics", nil, nil, "", "text/plain")
	if err != nil {
		return err
	}
	_, err = c.App.Writer.Write(data)
	return err
}
