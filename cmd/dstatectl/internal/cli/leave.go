package cli

import (
	"fmt"
	"net/http"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/dstate-go/dstate/pkg/agent"
)

// leaveTimeout is how long leave waits for the agent when --timeout is not
// given: longer than the agent's own bound of a leave (leave_timeout,
// default 10s), so the agent's answer, or its error, arrives first.
const leaveTimeout = time.Minute

func leaveCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "leave",
		Usage:     "make the agent leave the cluster gracefully and shut down",
		UsageText: "dstatectl [global options] leave",
		Description: "Asks the agent to leave the cluster and shut down, and waits until it has left.\n" +
			"It announces its leave to the gossip members (so peers drop its views at once\n" +
			"instead of suspecting a failure); a Raft server then hands leadership over if it\n" +
			"leads and is removed from the Raft configuration, so it no longer counts toward\n" +
			"the quorum and the next server may stop at once. The agent bounds this by its\n" +
			"leave_timeout (default 10s) and answers with an error when the cluster could not\n" +
			"remove it (no leader or no quorum); it shuts down either way. The last voter stays\n" +
			"in the configuration and keeps the cluster's state: start it again to bring the\n" +
			"cluster back. Without --timeout, leave waits up to 1m.\n\n" +
			"Example:\n" +
			"   dstatectl --addr 10.0.0.3:7380 leave",
		Action: runLeave,
	}
}

func runLeave(c *ucli.Context) error {
	if err := checkArgs(c, 0, 0, ""); err != nil {
		return err
	}
	cl, format, err := setup(c)
	if err != nil {
		return err
	}
	if !c.IsSet(flagTimeout) && cl.timeout < leaveTimeout {
		cl.timeout, cl.hc.Timeout = leaveTimeout, leaveTimeout
	}
	var res agent.LeaveResult
	if _, err := cl.sendJSON(c.Context, http.MethodPost, "/v1/leave", nil, nil, &res); err != nil {
		return err
	}
	if format == formatJSON {
		return writeJSON(c.App.Writer, res)
	}
	took := (time.Duration(res.TookMs) * time.Millisecond).String()
	switch res.Raft {
	case agent.LeaveRaftRemoved:
		handed := ""
		if res.Transferred {
			handed = " after handing leadership over"
		}
		fmt.Fprintf(c.App.Writer, "the agent at %s left the cluster and the Raft configuration%s in %s and is shutting down\n", cl.base, handed, took)
	case agent.LeaveRaftLastVoter:
		fmt.Fprintf(c.App.Writer, "the agent at %s left the cluster in %s and is shutting down; as the last Raft voter it keeps the cluster's state: start it again to bring the cluster back\n", cl.base, took)
	default:
		fmt.Fprintf(c.App.Writer, "the agent at %s left the cluster in %s and is shutting down\n", cl.base, took)
	}
	return nil
}
