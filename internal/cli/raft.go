package cli

import (
	"fmt"
	"sort"
	"strconv"

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
					"whether it leads, its match index and how many log entries it trails the leader by.\n\n" +
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
	t := newTable(c.App.Writer, "ID", "ADDRESS", "SUFFRAGE", "LEADER", "MATCH-INDEX", "TRAILS-LEADER-BY", "LAST-CONTACT")
	for _, p := range peers {
		contact := "-"
		if !p.Leader {
			contact = agoMs(p.LastContactMs)
		}
		t.row(p.ID, p.Address, p.Suffrage, yesNo(p.Leader), strconv.FormatUint(p.MatchIndex, 10),
			strconv.FormatUint(p.TrailsBy, 10), contact)
	}
	return t.flush()
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
