package cli

import (
	"fmt"
	"io"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func getCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "get",
		Usage:     "read one key of a key-value state",
		UsageText: "dstatectl [global options] get [--node NAME] [--state STATE] [--raw] <key>",
		ArgsUsage: "<key>",
		Description: "Reads <key> as a node holds it: the agent's own node by default, or the view of\n" +
			"another node with --node. With --raw it writes the value alone, byte for byte, with\n" +
			"no newline added. Exits with status 1 when the key is not found.\n\n" +
			"Example:\n" +
			"   dstatectl get user:42\n" +
			"   dstatectl get --raw config/limit > limit.txt\n" +
			"   dstatectl get --node n2 --state durable-kv config/limit",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "node", Usage: "read the view of node `NAME` (default: the agent's own)"},
			stateFlag(),
			&ucli.BoolFlag{Name: "raw", Usage: "write only the value, as stored, without a newline"},
		},
		Action: runGet,
	}
}

func runGet(c *ucli.Context) error {
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
	if n := c.String("node"); n != "" {
		q.Set("node", n)
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	var v agent.KVValue
	if err := cl.getJSON(c.Context, "/v1/kv/"+escape(key), q, &v); err != nil {
		return err
	}
	raw := c.Bool("raw")
	if raw && format == formatJSON {
		return usageErrorf("get: --raw and --format json do not go together")
	}
	if raw {
		if v.Found {
			if _, err := io.WriteString(c.App.Writer, v.Value); err != nil {
				return err
			}
		}
	} else if format == formatJSON {
		if err := writeJSON(c.App.Writer, v); err != nil {
			return err
		}
	} else if v.Found {
		t := newTable(c.App.Writer, "NODE", "STATE", "KEY", "VALUE", "GENERATION")
		t.row(v.Node, v.State, v.Key, v.Value, v.Generation)
		if err := t.flush(); err != nil {
			return err
		}
	}
	if !v.Found {
		return &exitStatus{code: 1, err: fmt.Errorf("get: key %q not found in state %s on node %s", key, v.State, orDash(v.Node))}
	}
	return nil
}
