package cli

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func dumpCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "dump",
		Usage:     "show the views of every state, or of one, as the agent holds them",
		UsageText: "dstatectl [global options] dump [--node NAME] [--max-staleness DURATION] [--consistent] [state]",
		ArgsUsage: "[state]",
		Description: "Shows each node's view of a state: its generation, how long ago it was synced and\n" +
			"its value. Without a state name every registered state is shown (in JSON: a list of\n" +
			"dumps; with a name: one dump). --max-staleness makes the agent refresh peers whose\n" +
			"views are older first; --consistent reads every node's last committed value through\n" +
			"Raft (only for states stored in Raft).\n\n" +
			"Example:\n" +
			"   dstatectl dump kv\n" +
			"   dstatectl dump --node n2 --max-staleness 2s kv\n" +
			"   dstatectl --format json dump --consistent kv",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "node", Usage: "show only the view of node `NAME`"},
			&ucli.DurationFlag{Name: "max-staleness", Usage: "refresh views older than `DURATION` before answering", DefaultText: "views as held"},
			&ucli.BoolFlag{Name: "consistent", Usage: "linearizable read through Raft", DisableDefaultText: true},
		},
		Action: runDump,
	}
}

func runDump(c *ucli.Context) error {
	if err := checkArgs(c, 0, 1, "at most one [state]"); err != nil {
		return err
	}
	q, err := dumpQuery(c)
	if err != nil {
		return err
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	if c.NArg() == 1 {
		d, err := fetchDump(c, cl, c.Args().First(), q)
		if err != nil {
			return err
		}
		if format == formatJSON {
			return writeJSON(c.App.Writer, d)
		}
		return printDumps(c, []agent.StateDump{d})
	}
	var states []agent.StateInfo
	if err := cl.getJSON(c.Context, "/v1/states", nil, &states); err != nil {
		return err
	}
	dumps := make([]agent.StateDump, 0, len(states))
	for _, s := range states {
		d, err := fetchDump(c, cl, s.Name, q)
		if err != nil {
			return err
		}
		dumps = append(dumps, d)
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, dumps)
	}
	if len(dumps) == 0 {
		fmt.Fprintln(c.App.Writer, "the agent has no registered states")
		return nil
	}
	return printDumps(c, dumps)
}

// dumpQuery builds the query of GET /v1/states/{name} from the flags.
func dumpQuery(c *ucli.Context) (url.Values, error) {
	q := url.Values{}
	if n := c.String("node"); n != "" {
		q.Set("node", n)
	}
	if c.IsSet("max-staleness") {
		d := c.Duration("max-staleness")
		if d < 0 {
			return nil, usageErrorf("--max-staleness: must not be negative, got %s", d)
		}
		q.Set("max_staleness", d.String())
	}
	if c.Bool("consistent") {
		q.Set("consistent", "true")
	}
	return q, nil
}

func fetchDump(c *ucli.Context, cl *client, state string, q url.Values) (agent.StateDump, error) {
	if state == "" {
		return agent.StateDump{}, usageErrorf("%s: empty state name", cmdName(c))
	}
	var d agent.StateDump
	if err := cl.getJSON(c.Context, "/v1/states/"+escape(state), q, &d); err != nil {
		return agent.StateDump{}, err
	}
	if d.Views == nil {
		d.Views = []agent.ViewEntry{}
	}
	return d, nil
}

// printDumps shows dumps as one table per state.
func printDumps(c *ucli.Context, dumps []agent.StateDump) error {
	w := c.App.Writer
	for i, d := range dumps {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "state %s (%s read, %s)\n", d.State, orDash(d.Consistency), plural(len(d.Views), "view"))
		if len(d.StalePeers) > 0 {
			fmt.Fprintf(w, "stale peers: %s\n", strings.Join(d.StalePeers, ", "))
		}
		if len(d.Views) == 0 {
			continue
		}
		t := newTable(w, "NODE", "GENERATION", "PENDING", "SYNCED", "MODIFIED", "VALUE")
		for _, v := range d.Views {
			t.row(v.Node, v.Generation, orDash(v.Pending), agoMs(v.SyncedAgoMs), unixMs(v.ModifiedMs), compactJSON(v.Value))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

// unixMs shows a Unix time in milliseconds in UTC.
func unixMs(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}
