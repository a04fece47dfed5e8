package cli

import (
	"fmt"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// complete answers --generate-bash-completion (EnableBashCompletion): the
// subcommands of a group, or the flags of a leaf command. Unlike urfave's
// default it reads nothing from os.Args, so it behaves the same in tests.
func complete(c *ucli.Context) {
	cmd := c.Command
	if cmd == nil {
		return
	}
	w := c.App.Writer
	if len(cmd.Subcommands) > 0 {
		for _, s := range cmd.Subcommands {
			if !s.Hidden && s.Name != "help" {
				fmt.Fprintln(w, s.Name)
			}
		}
		return
	}
	for _, f := range cmd.VisibleFlags() {
		name := f.Names()[0]
		if name == "help" {
			continue
		}
		fmt.Fprintln(w, "--"+strings.TrimPrefix(name, "-"))
	}
}
