package cli

import (
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func putCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "put",
		Usage:     "write one key of a key-value state on the agent's node",
		UsageText: "dstatectl [global options] put [--state STATE] <key> <value>",
		ArgsUsage: "<key> <value>",
		Description: "Sets <key> to <value> in the agent's own copy of the state; the change replicates\n" +
			"to the other nodes by the state's sync strategy. With --state durable-kv the write is\n" +
			"committed through Raft before it is published. A <value> of - reads the value from\n" +
			"standard input, as it is (a trailing newline included).\n\n" +
			"Example:\n" +
			"   dstatectl put user:42 alice\n" +
			"   dstatectl put config/motd - < motd.txt\n" +
			"   dstatectl put --state durable-kv config/limit 100",
		Flags:  []ucli.Flag{stateFlag()},
		Action: runPut,
	}
}

func runPut(c *ucli.Context) error {
	if err := checkArgs(c, 2, 2, "<key> <value>"); err != nil {
		return err
	}
	key, value := c.Args().Get(0), c.Args().Get(1)
	if err := checkKey(c, key); err != nil {
		return err
	}
	if value == "-" {
		in := c.App.Reader
		if in == nil {
			in = os.Stdin
		}
		b, err := io.ReadAll(in)
		if err != nil {
			return fmt.Errorf("put: reading the value from standard input: %w", err)
		}
		value = string(b)
	}
	q, err := kvQuery(c)
	if err != nil {
		return err
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	data, _, err := cl.do(c.Context, http.MethodPut, "/v1/kv/"+escape(key), q, []byte(value), "application/octet-stream")
	if err != nil {
		return err
	}
	var res agent.WriteResult
	if err := cl.decode("/v1/kv/", data, &res); err != nil {
		return err
	}
	return printWrite(c, format, "put", res)
}
