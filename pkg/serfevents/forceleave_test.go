package serfevents_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// TestForceLeave crashes n3: force-leave refuses alive members, this node
// and unknown names, then marks n3 left on every member (NodeLeft, not a
// lingering failure); with prune n3 disappears from the member list.
func TestForceLeave(t *testing.T) {
	for _, prune := range []bool{false, true} {
		name := "left"
		if prune {
			name = "pruned"
		}
		t.Run(name, func(t *testing.T) {
			c := newCluster(t, nil)
			n1, n2 := c.ms["n1"], c.ms["n2"]
			require.ErrorIs(t, n1.ForceLeave(ctxT(t), "n2", prune), serfevents.ErrMemberAlive)
			require.ErrorIs(t, n1.ForceLeave(ctxT(t), "n1", prune), serfevents.ErrMemberAlive)
			require.ErrorIs(t, n1.ForceLeave(ctxT(t), "ghost", prune), serfevents.ErrUnknownMember)

			require.NoError(t, c.ms["n3"].Shutdown()) // a crash: no leave
			for _, m := range []*serfevents.Membership{n1, n2} {
				eventually(t, "n3 failed", func() bool { return statusOf(m, "n3") == serfevents.StatusFailed })
			}
			from := c.recs["n2"].len()
			require.NoError(t, n1.ForceLeave(ctxT(t), "n3", prune))
			want := serfevents.StatusLeft
			if prune {
				want = 0 // not a member any more
			}
			for _, m := range []*serfevents.Membership{n1, n2} {
				eventually(t, "n3 forced out", func() bool { return statusOf(m, "n3") == want })
			}
			eventually(t, "n2 sees n3 leave", func() bool { return c.recs["n2"].has(from, dstate.NodeLeft, "n3") })
		})
	}
}
