package cli

import (
	"fmt"
	"net/url"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

// The key-value states every agent registers.
const (
	stateKV        = "kv"
	stateDurableKV = "durable-kv"
)

// kvQuery returns the query naming --state, checking it is not empty.
func kvQuery(c *ucli.Context) (url.Values, error) {
	s := c.String("state")
	if s == "" {
		return nil, usageErrorf("--state: must not be empty (e.g. %s or %s)", stateKV, stateDurableKV)
	}
	return url.Values{"state": {s}}, nil
}

// checkKey rejects an empty key.
func checkKey(c *ucli.Context, key string) error {
	if key == "" {
		return usageErrorf("%s: the <key> must not be empty", cmdName(c))
	}
	return nil
}

// stateFlag is --state of the kv commands.
func stateFlag() ucli.Flag {
	return &ucli.StringFlag{
		Name:  "state",
		Value: stateKV,
		Usage: "key-value `STATE` to use: " + stateKV + " (each node's own map, saved to its disk) or " + stateDurableKV + " (committed through Raft)",
	}
}

// printWrite shows a put or delete outcome.
func printWrite(c *ucli.Context, format, verb string, res agent.WriteResult) error {
	if format == formatJSON {
		return writeJSON(c.App.Writer, res)
	}
	if res.Unchanged {
		fmt.Fprintf(c.App.Writer, "%s on %s holds no key %s: nothing changed (generation %s)\n", res.State, res.Node, res.Key, res.Generation)
		return nil
	}
	fmt.Fprintf(c.App.Writer, "%s %s/%s on %s (generation %s)\n", verb, res.State, res.Key, res.Node, res.Generation)
	return nil
}
