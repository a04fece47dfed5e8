package cli

import (
	"errors"

	ucli "github.com/urfave/cli/v2"
)

// benchCommand is a placeholder: the performance work fills in its
// subcommands.
func benchCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "bench",
		Usage:     "benchmark a cluster (not built yet: filled in by the performance work)",
		UsageText: "dstatectl [global options] bench",
		Description: "Placeholder for cluster benchmarks. Until they exist, run the Go micro-benchmarks\n" +
			"with 'make bench' or 'go test -run ^$ -bench . ./...'.\n\n" +
			"Example:\n" +
			"   make bench",
		Action: func(c *ucli.Context) error {
			return errors.New("bench: not built yet; run 'make bench' for the Go micro-benchmarks")
		},
	}
}
