package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
)

// Version is dstatectl's version string.
const Version = "0.1.0-dev"

// Defaults of the global flags.
const (
	// DefaultAddr is the agent's admin API address when neither --addr nor
	// DSTATE_ADDR says otherwise.
	DefaultAddr = "127.0.0.1:7380"
	// DefaultTimeout bounds every request to the agent.
	DefaultTimeout = 10 * time.Second
)

// Names of the global flags, shared by the commands that read them.
const (
	flagAddr      = "addr"
	flagToken     = "token"
	flagTokenFile = "token-file"
	flagCAFile    = "ca-file"
	flagFormat    = "format"
	flagTimeout   = "timeout"
)

// NewApp returns the dstatectl application writing to stdout and stderr.
func NewApp(stdout, stderr io.Writer) *ucli.App {
	app := &ucli.App{
		Name:  "dstatectl",
		Usage: "replicate per-node state across a cluster",
		UsageText: "dstatectl [global options] command [command options] [arguments...]\n\n" +
			"dstatectl members\n" +
			"dstatectl --addr 10.0.0.5:7380 --format json dump kv",
		Description: "dstatectl runs a dstate node (agent) and inspects or changes a running one through\n" +
			"its HTTP admin API. Global options go before the command; a command's own options may\n" +
			"come before or after its arguments. Exit status: 0 on success,\n" +
			"2 when the command was called wrongly, 1 on any other failure (health: 3 when degraded).",
		Version:              Version,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		Flags:                globalFlags(),
		Commands: []*ucli.Command{
			agentCommand(),
			bootstrapCommand(),
			joinCommand(),
			leaveCommand(),
			forceLeaveCommand(),
			membersCommand(),
			dumpCommand(),
			watchCommand(),
			getCommand(),
			putCommand(),
			delCommand(),
			healthCommand(),
			metricsCommand(),
			raftCommand(),
			keyringCommand(),
			tlsCommand(),
			demoCommand(),
			benchCommand(),
			versionCommand(),
			completionCommand(),
		},
		Before: func(c *ucli.Context) error {
			_, err := outputFormat(c)
			return err
		},
		Action: func(c *ucli.Context) error {
			if c.Args().Present() {
				return usageErrorf("unknown command %q (run 'dstatectl --help' for the list)", c.Args().First())
			}
			return ucli.ShowAppHelp(c)
		},
		BashComplete:   complete,
		OnUsageError:   onUsageError,
		ExitErrHandler: func(*ucli.Context, error) {}, // Main prints and exits
	}
	for _, cmd := range app.Commands {
		prepareCommand(cmd)
	}
	return app
}

// globalFlags are the flags every command that talks to an agent reads.
func globalFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{
			Name:    flagAddr,
			Value:   DefaultAddr,
			EnvVars: []string{"DSTATE_ADDR"},
			Usage:   "`ADDR` of the agent's HTTP admin API (host:port or a URL)",
		},
		&ucli.StringFlag{
			Name:    flagToken,
			EnvVars: []string{"DSTATE_TOKEN", "DSTATE_ADMIN_TOKEN"}, // the latter is the agent's own
			Usage:   "bearer `TOKEN` the agent's admin API requires",
		},
		&ucli.StringFlag{
			Name:    flagTokenFile,
			EnvVars: []string{"DSTATE_TOKEN_FILE"},
			Usage:   "read the bearer token from `FILE` (when --token is not set)",
		},
		&ucli.StringFlag{
			Name:    flagCAFile,
			EnvVars: []string{"DSTATE_CA_FILE"},
			Usage:   "trust the CA in `FILE` for an https:// --addr (default: the system's roots)",
		},
		&ucli.StringFlag{
			Name:  flagFormat,
			Value: formatTable,
			Usage: "output `FORMAT`: table (for people) or json (stable, for scripts)",
		},
		&ucli.DurationFlag{
			Name:  flagTimeout,
			Value: DefaultTimeout,
			Usage: "give up on the agent after `DURATION`",
		},
	}
}

// prepareCommand applies what every command shares: usage errors on bad
// flags, shell completion that does not depend on os.Args, and no "help" subcommand on leaf commands (so
// that `dstatectl get help` reads the key "help").
func prepareCommand(cmd *ucli.Command) {
	cmd.OnUsageError = onUsageError
	cmd.BashComplete = complete
	if len(cmd.Subcommands) == 0 {
		cmd.HideHelpCommand = true
	}
	for _, sub := range cmd.Subcommands {
		prepareCommand(sub)
	}
}

// onUsageError turns urfave's flag parsing errors into usage errors (exit
// status 2), with a hint when a global flag was put after the command.
func onUsageError(c *ucli.Context, err error, isSubcommand bool) error {
	name := cmdName(c)
	msg := err.Error()
	const undefined = "flag provided but not defined: -"
	if rest, ok := strings.CutPrefix(msg, undefined); ok && isSubcommand {
		flag := strings.TrimLeft(rest, "-")
		for _, g := range globalFlags() {
			if g.Names()[0] == flag {
				msg += fmt.Sprintf(" (--%s is a global option: put it before the command, e.g. dstatectl --%s ... %s)",
					flag, flag, name)
			}
		}
	}
	if !isSubcommand {
		return usageError{fmt.Errorf("%s (see 'dstatectl --help')", msg)}
	}
	return usageError{fmt.Errorf("%s: %s (see '%s --help')", name, msg, helpName(c))}
}

// cmdName names c's command in messages, e.g. "raft peers"; Main adds the
// "dstatectl: " prefix.
func cmdName(c *ucli.Context) string {
	return strings.TrimPrefix(helpName(c), "dstatectl ")
}

// helpName is the full name of c's command, e.g. "dstatectl raft peers".
func helpName(c *ucli.Context) string {
	if c.Command == nil || c.Command.HelpName == "" {
		return "dstatectl"
	}
	return c.Command.HelpName
}

// Main runs dstatectl with args (args[0] is the program name) and returns
// the process exit code: 0 on success, 2 on a usage error, 1 otherwise.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		args = []string{"dstatectl"}
	}
	return runWithInput(args, os.Stdin, stdout, stderr)
}

// runWithInput is Main reading standard input from stdin (put KEY -).
func runWithInput(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := NewApp(stdout, stderr)
	app.Reader = stdin
	err := app.RunContext(context.Background(), reorderArgs(app, args))
	if err == nil {
		return 0
	}
	var st *exitStatus
	if errors.As(err, &st) {
		if st.err != nil {
			fmt.Fprintf(stderr, "dstatectl: %v\n", st.err)
		}
		return st.code
	}
	fmt.Fprintf(stderr, "dstatectl: %v\n", err)
	var ue usageError
	var ec ucli.ExitCoder // urfave's own, e.g. "No help topic for 'x'"
	if errors.As(err, &ue) || errors.As(err, &ec) {
		return 2
	}
	return 1
}

// usageError marks an error in how the command was called.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// usageErrorf returns a usageError with a formatted message.
func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// exitStatus is a failure whose output was already written (a health report,
// a missing key): Main exits with code and prints err if it is not nil.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitStatus) Unwrap() error { return e.err }

// checkArgs validates the number of positional arguments of c's command:
// at least min and at most max (max < 0: no limit). what names them for the
// message, e.g. "<key> <value>".
func checkArgs(c *ucli.Context, min, max int, what string) error {
	n := c.NArg()
	name, full := cmdName(c), helpName(c)
	switch {
	case n < min && min == max:
		return usageErrorf("%s: expected %s, got %s (see '%s --help')", name, what, plural(n, "argument"), full)
	case n < min:
		return usageErrorf("%s: expected at least %s, got %s (see '%s --help')", name, what, plural(n, "argument"), full)
	case max >= 0 && n > max && max == 0:
		return usageErrorf("%s: takes no arguments, got %q (see '%s --help')", name, c.Args().Slice(), full)
	case max >= 0 && n > max:
		hint := ""
		for _, a := range c.Args().Slice() {
			if strings.HasPrefix(a, "-") && len(a) > 1 {
				hint = "; after --, options are read as arguments"
				break
			}
		}
		return usageErrorf("%s: expected %s, got %s: %q%s (see '%s --help')", name, what, plural(n, "argument"), c.Args().Slice(), hint, full)
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
