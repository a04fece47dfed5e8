package cli

import (
	"fmt"

	ucli "github.com/urfave/cli/v2"
)

func versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "version",
		Usage:     "print dstatectl's version",
		UsageText: "dstatectl [global options] version",
		Description: "Prints the version of this dstatectl (the same as --version); with --format json\n" +
			"as {\"version\": ...}.\n\n" +
			"Example:\n" +
			"   dstatectl version",
		Action: runVersion,
	}
}

func runVersion(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	format, err := outputFormat(c)
	if err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, struct {
			Version string `json:"version"`
		}{Version})
	}
	fmt.Fprintf(c.App.Writer, "%s version %s\n", c.App.Name, Version)
	return nil
}
