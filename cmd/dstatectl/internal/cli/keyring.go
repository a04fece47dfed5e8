package cli

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func keyringCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "keyring",
		Usage:     "manage the gossip encryption keys of the cluster",
		UsageText: "dstatectl [global options] keyring command [<key>]",
		Description: "Rotates the gossip encryption key without downtime: install the new key on every\n" +
			"member, make it the primary with use, then remove the old one. Keys are base64 of 16,\n" +
			"24 or 32 random bytes (e.g. head -c 32 /dev/urandom | base64).\n\n" +
			"Example:\n" +
			"   dstatectl keyring list\n" +
			"   dstatectl keyring install 5s0qX7d3fYq9o1Vw1mYtqzR3ZQ6f0F6Wcm6vS8b2k1A=",
		Subcommands: []*ucli.Command{
			{
				Name:      "list",
				Usage:     "list the installed keys and how many members hold each",
				UsageText: "dstatectl [global options] keyring list",
				Description: "Lists the gossip keys installed in the cluster, the primary one marked, with the\n" +
					"number of members holding each.\n\n" +
					"Example:\n" +
					"   dstatectl keyring list",
				Action: runKeyringList,
			},
			keyCommand("install", "install a new key on every member (not yet used to encrypt)"),
			keyCommand("use", "make an installed key the primary (the one used to encrypt)"),
			keyCommand("remove", "remove a key that is no longer the primary from every member"),
		},
		Action: groupAction,
	}
}

// keyCommand is one of keyring install, use and remove.
func keyCommand(op, usage string) *ucli.Command {
	return &ucli.Command{
		Name:      op,
		Usage:     usage,
		UsageText: "dstatectl [global options] keyring " + op + " <key>",
		ArgsUsage: "<key>",
		Description: "The agent passes the request to every member through gossip.\n" +
			"<key> is base64 of 16, 24 or 32 bytes.\n\n" +
			"Example:\n" +
			"   dstatectl keyring " + op + " 5s0qX7d3fYq9o1Vw1mYtqzR3ZQ6f0F6Wcm6vS8b2k1A=",
		Action: func(c *ucli.Context) error { return runKeyOp(c, op) },
	}
}

func runKeyOp(c *ucli.Context, op string) error {
	if err := checkArgs(c, 1, 1, "one <key>"); err != nil {
		return err
	}
	key := c.Args().First()
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		return usageErrorf("%s: <key> is not base64: %v", cmdName(c), err)
	}
	if n := len(raw); n != 16 && n != 24 && n != 32 {
		return usageErrorf("%s: <key> decodes to %d bytes, want 16, 24 or 32", cmdName(c), n)
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	if _, err := cl.sendJSON(c.Context, http.MethodPost, "/v1/keyring/"+op, nil, agent.KeyRequest{Key: key}, nil); err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, struct{}{})
	}
	past := map[string]string{"install": "installed", "use": "now using", "remove": "removed"}[op]
	fmt.Fprintf(c.App.Writer, "%s key %s\n", past, key)
	return nil
}

func runKeyringList(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	var ks agent.KeyringStatus
	if err := cl.getJSON(c.Context, "/v1/keyring", nil, &ks); err != nil {
		return err
	}
	if ks.Keys == nil {
		ks.Keys = map[string]int{}
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, ks)
	}
	if !ks.Encrypted {
		fmt.Fprintln(c.App.Writer, "gossip encryption is off: the cluster has no keys")
		return nil
	}
	fmt.Fprintf(c.App.Writer, "gossip encryption is on; %s\n", plural(ks.Members, "member"))
	keys := make([]string, 0, len(ks.Keys))
	for k := range ks.Keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := newTable(c.App.Writer, "KEY", "PRIMARY", "MEMBERS")
	for _, k := range keys {
		t.row(k, yesNo(k == ks.Primary), strconv.Itoa(ks.Keys[k])+"/"+strconv.Itoa(ks.Members))
	}
	return t.flush()
}
