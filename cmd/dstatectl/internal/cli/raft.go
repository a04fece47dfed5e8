package cli

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/dstate-go/dstate/pkg/agent"
	ucli "github.com/urfave/cli/v2"
)

func raftCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "raft",
		Usage:     "inspect the Raft group that stores durable states",
		UsageText: "dstatectl [global options] raft command",
		Description: "Shows the Raft group as the agent sees it. The group is created once with\n" +
			"'dstatectl bootstrap'.\n\n" +
			"Example:\n" +
			"   dstatectl raft peers\n" +
			"   dstatectl --format json raft status",
		Subcommands: []*ucli.Command{
			{
				Name:      "peers",
				Usage:     "list the servers of the Raft configuration and how far each trails the leader",
				UsageText: "dstatectl [global options] raft peers",
				Description: "Lists every server of the Raft configuration: its address, whether it votes,\n" +
					"whether it leads, its Raft state, its match index, how many log entries it trails the\n" +
					"leader by and when it last heard from the leader. A server that cannot be asked is\n" +
					"shown as unreachable, with the error (its indexes are then unknown, shown as ?).\n\n" +
					"Example:\n" +
					"   dstatectl raft peers",
				Action: runRaftPeers,
			},
			{
				Name:      "status",
				Usage:     "show the agent's Raft state, term, indexes and statistics",
				UsageText: "dstatectl [global options] raft status",
				Description: "Shows whether the agent is leader or follower, who leads, the term, the commit\n" +
					"and applied indexes, and Raft's own statistics.\n\n" +
					"Example:\n" +
					"   dstatectl raft status",
				Action: runRaftStatus,
			},
			{
				Name:      "remove-peer",
				Usage:     "remove a server from the Raft configuration by node ID",
				UsageText: "dstatectl [global options] raft remove-peer <node-id>",
				ArgsUsage: "<node-id>",
				Description: "Removes a server (one that is dead, or whose address changed) from the Raft\n" +
					"configuration, through the leader, so that quorum is counted without it. The last\n" +
					"voter is never removed. A server that is still an alive member is added back by\n" +
					"the leader: stop it first (and 'dstatectl force-leave' it).\n\n" +
					"Example:\n" +
					"   dstatectl raft remove-peer n4",
				Action: runRaftRemovePeer,
			},
		},
		Action: groupAction,
	}
}

// fetchRaft reads /v1/raft; a Raft group that is not enabled is an error
// unless allowDisabled.
func fetchRaft(c *ucli.Context, allowDisabled bool) (agent.RaftStatus, string, error) {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return agent.RaftStatus{}, "", err
	}
	cl, format, err := setup(c)
	if err != nil {
		return agent.RaftStatus{}, "", err
	}
	var st agent.RaftStatus
	if err := cl.getJSON(c.Context, "/v1/raft", nil, &st); err != nil {
		return agent.RaftStatus{}, "", err
	}
	if !st.Enabled && !allowDisabled {
		return agent.RaftStatus{}, "", fmt.Errorf("raft: the agent at %s is not a Raft server (see 'dstatectl agent --help')", cl.base)
	}
	return st, format, nil
}

func runRaftPeers(c *ucli.Context) error {
	st, format, err := fetchRaft(c, false)
	if err != nil {
		return err
	}
	peers := st.Peers
	if peers == nil {
		peers = []agent.RaftPeer{}
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, peers)
	}
	t := newTable(c.App.Writer, "ID", "ADDRESS", "SUFFRAGE", "LEADER", "STATE", "MATCH-INDEX", "TRAILS-LEADER-BY", "LAST-CONTACT", "ERROR")
	for _, p := range peers {
		contact := "-"
		if !p.Leader {
			contact = agoMs(p.LastContactMs)
		}
		match, trails := strconv.FormatUint(p.MatchIndex, 10), strconv.FormatUint(p.TrailsBy, 10)
		if p.Error != "" {
			match, trails = "?", "?" // the server could not be asked
		}
		t.row(p.ID, p.Address, p.Suffrage, yesNo(p.Leader), orDash(p.State), match, trails, contact, orDash(p.Error))
	}
	return t.flush()
}

func runRaftRemovePeer(c *ucli.Context) error {
	if err := checkArgs(c, 1, 1, "the <node-id> of the server to remove"); err != nil {
		return err
	}
	id := c.Args().First()
	if strings.TrimSpace(id) == "" {
		return usageErrorf("%s: empty node ID", cmdName(c))
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	var res agent.RemovePeerResult
	if _, err := cl.sendJSON(c.Context, http.MethodPost, "/v1/raft/remove-peer", nil, agent.RemovePeerRequest{ID: id}, &res); err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, res)
	}
	fmt.Fprintf(c.App.Writer, "removed %s (%s) from the Raft configuration; %s left\n", res.ID, res.Address, plural(res.Voters, "voter"))
	return nil
}

func runRaftStatus(c *ucli.Context) error {
	st, format, err := fetchRaft(c, true)
	if err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, st)
	}
	if !st.Enabled {
		fmt.Fprintln(c.App.Writer, "raft is not enabled on this agent")
		return nil
	}
	leader := orDash(st.Leader)
	if st.LeaderAddr != "" {
		leader += " (" + st.LeaderAddr + ")"
	}
	t := newTable(c.App.Writer)
	t.row("state:", orDash(st.State))
	t.row("leader:", leader)
	t.row("term:", strconv.FormatUint(st.Term, 10))
	t.row("commit index:", strconv.FormatUint(st.CommitIndex, 10))
	t.row("applied index:", strconv.FormatUint(st.AppliedIdx, 10))
	t.row("servers:", strconv.Itoa(len(st.Peers)))
	if len(st.Extra) > 0 {
		keys := make([]string, 0, len(st.Extra))
		for k := range st.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if err := t.flush(); err != nil {
			return err
		}
		fmt.Fprintln(c.App.Writer, "\nraft statistics:")
		t = newTable(c.App.Writer)
		for _, k := range keys {
			t.row("  "+k+":", st.Extra[k])
		}
	}
	return t.flush()
}
