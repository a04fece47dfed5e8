package cli

import (
	"sort"
	"strings"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func membersCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "members",
		Usage:     "list the cluster's members as the agent sees them",
		UsageText: "dstatectl [global options] members",
		Description: "Lists every member the agent's membership layer knows, with its address, status\n" +
			"(alive, leaving, left, failed) and tags.\n\n" +
			"Example:\n" +
			"   dstatectl members\n" +
			"   dstatectl --format json members",
		Action: runMembers,
	}
}

func runMembers(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	var members []agent.Member
	if err := cl.getJSON(c.Context, "/v1/members", nil, &members); err != nil {
		return err
	}
	if members == nil {
		members = []agent.Member{}
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, members)
	}
	t := newTable(c.App.Writer, "NAME", "ADDR", "STATUS", "TAGS")
	for _, m := range members {
		t.row(m.Name, m.Addr, m.Status, orDash(formatTags(m.Tags)))
	}
	return t.flush()
}

// formatTags shows tags as k=v pairs sorted by key.
func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ",")
}
