package cli

import (
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// groupAction is the Action of a command that only groups subcommands: with
// no subcommand it shows the group's help, and either way it is a usage
// error.
func groupAction(c *ucli.Context) error {
	var names []string
	for _, s := range c.Command.Subcommands {
		if s.Name != "help" && !s.Hidden {
			names = append(names, s.Name)
		}
	}
	want := strings.Join(names, ", ")
	if c.Args().Present() {
		return usageErrorf("%s: unknown command %q (want one of: %s)", cmdName(c), c.Args().First(), want)
	}
	_ = ucli.ShowSubcommandHelp(c)
	return usageErrorf("%s: missing command (want one of: %s)", cmdName(c), want)
}
