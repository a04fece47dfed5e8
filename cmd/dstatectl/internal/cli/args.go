package cli

import (
	"slices"
	"strings"

	ucli "github.com/urfave/cli/v2"
)

// reorderArgs moves the options of the command args runs ahead of its
// arguments, so that `dstatectl get greeting --node n1` reads as
// `dstatectl get --node n1 greeting`: urfave/cli stops reading options
// at a command's first argument. Global options stay where they are (before
// the command), everything after "--" is an argument, and a request for
// shell completion is left alone.
func reorderArgs(app *ucli.App, args []string) []string {
	if len(args) < 2 || slices.Contains(args, "--generate-bash-completion") {
		return args
	}
	i := 1
	flags, cmds := app.Flags, app.Commands
	var cmd *ucli.Command
	for i < len(args) {
		a := args[i]
		if a == "--" {
			return args
		}
		if isOption(a) {
			i += optionWidth(flags, args[i:])
			continue
		}
		next := findCommand(cmds, a)
		if next == nil {
			break
		}
		cmd, flags, cmds = next, next.Flags, next.Subcommands
		i++
		if len(cmds) == 0 {
			break
		}
	}
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return args
	}
	var opts, rest []string
	for j := i; j < len(args); {
		a := args[j]
		switch {
		case a == "--":
			rest = append(rest, args[j:]...)
			j = len(args)
		case isOption(a):
			w := optionWidth(flags, args[j:])
			opts = append(opts, args[j:j+w]...)
			j += w
		default:
			rest = append(rest, a)
			j++
		}
	}
	out := append(append(slices.Clone(args[:i]), opts...), rest...)
	return out
}

// isOption reports whether a looks like an option ("-" alone is an
// argument: standard input).
func isOption(a string) bool { return len(a) > 1 && a[0] == '-' }

// optionWidth is how many words the option at args[0] takes: two when it
// is a known option that takes a value given apart ("--node n1"), else one.
func optionWidth(flags []ucli.Flag, args []string) int {
	name := strings.TrimLeft(args[0], "-")
	if strings.Contains(name, "=") || len(args) < 2 {
		return 1
	}
	for _, f := range flags {
		if !slices.Contains(f.Names(), name) {
			continue
		}
		if _, isBool := f.(*ucli.BoolFlag); isBool {
			return 1
		}
		return 2
	}
	return 1
}

// findCommand is the command of cmds named (or aliased) name.
func findCommand(cmds []*ucli.Command, name string) *ucli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
