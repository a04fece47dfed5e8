package cli

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func membersCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "members",
		Usage:     "list the cluster's members as the agent sees them",
		UsageText: "dstatectl [global options] members [--status STATUS,...] [--detailed]",
		Description: "Lists every member the agent's membership layer knows, with its address, status\n" +
			"(alive, leaving, left, failed) and tags. --status keeps the members of the statuses\n" +
			"named; --detailed shows each member's tags one per line and its gossip protocol\n" +
			"versions (memberlist's and serf's: current, min-max).\n\n" +
			"Example:\n" +
			"   dstatectl members\n" +
			"   dstatectl members --status failed,left --detailed\n" +
			"   dstatectl --format json members",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "status", Usage: "only members whose status is one of `STATUS,...` (alive, leaving, left, failed)"},
			&ucli.BoolFlag{Name: "detailed", Usage: "show every tag and the protocol versions"},
		},
		Action: runMembers,
	}
}

func runMembers(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, st := range splitList(c.String("status")) {
		if !slices.Contains(memberStatuses, st) {
			return usageErrorf("members: --status %q is not one of %s", st, strings.Join(memberStatuses, ", "))
		}
		want[st] = true
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	var members []agent.Member
	if err := cl.getJSON(c.Context, "/v1/members", nil, &members); err != nil {
		return err
	}
	kept := []agent.Member{}
	for _, m := range members {
		if len(want) == 0 || want[m.Status] {
			kept = append(kept, m)
		}
	}
	members = kept
	if format == formatJSON {
		return writeJSON(c.App.Writer, members)
	}
	if c.Bool("detailed") {
		return writeMembersDetailed(c.App.Writer, members)
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

// memberStatuses are the statuses a member may have.
var memberStatuses = []string{"alive", "leaving", "left", "failed"}

// writeMembersDetailed writes one block per member: its address, status,
// protocol versions and every tag on a line of its own.
func writeMembersDetailed(w io.Writer, members []agent.Member) error {
	for i, m := range members {
		if i > 0 {
			fmt.Fprintln(w)
		}
		p := m.Protocol
		fmt.Fprintf(w, "%s\n  addr:      %s\n  status:    %s\n", m.Name, m.Addr, m.Status)
		fmt.Fprintf(w, "  protocol:  memberlist %d (%d-%d), serf %d (%d-%d)\n", p.Cur, p.Min, p.Max, p.DelegateCur, p.DelegateMin, p.DelegateMax)
		keys := make([]string, 0, len(m.Tags))
		for k := range m.Tags {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 0 {
			fmt.Fprintln(w, "  tags:      -")
		}
		for j, k := range keys {
			label := "  tags:      "
			if j > 0 {
				label = "             "
			}
			fmt.Fprintf(w, "%s%s=%s\n", label, k, m.Tags[k])
		}
	}
	return nil
}
