package agent

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TestStaleAfterFollowsTheSyncSchedule: the staleness bound is two periods
// of whatever renews an idle view, plus the pull timeout.
func TestStaleAfterFollowsTheSyncSchedule(t *testing.T) {
	push := dstate.DefaultStateConfig() // active push, 5s pull timeout
	periodic := dstate.DefaultStateConfig()
	periodic.SyncStrategy = dstate.PeriodicOnlyStrategy(time.Second)
	pushPeriodic := dstate.DefaultStateConfig()
	pushPeriodic.SyncStrategy.PeriodicFullSync = 200 * time.Millisecond
	lazy := dstate.DefaultStateConfig()
	lazy.SyncStrategy = dstate.FeedLazyPullStrategy()
	lazy.PullTimeout = time.Second
	cases := []struct {
		name    string
		cfg     dstate.StateConfig
		digests time.Duration
		want    time.Duration
	}{
		{"active push renewed by digests", push, 500 * time.Millisecond, 6 * time.Second},
		{"periodic sync, digests do not renew a changing view", periodic, 500 * time.Millisecond, 7 * time.Second},
		{"active push with a shorter periodic sync", pushPeriodic, 500 * time.Millisecond, 5400 * time.Millisecond},
		{"lazy pull renewed by digests while idle", lazy, 500 * time.Millisecond, 2 * time.Second},
		{"periodic sync without digests", periodic, 0, 7 * time.Second},
		{"nothing renews an idle view", push, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, staleAfter(tc.cfg, tc.digests))
		})
	}
	require.Equal(t, 500*time.Millisecond, digestEvery(Config{}))
	require.Equal(t, time.Second, digestEvery(Config{DigestInterval: Duration(time.Second)}))
}

// TestStateStatusCountsThisNode: a state is degraded while this node and
// its healthy peers are a strict majority of the nodes, else unhealthy.
func TestStateStatusCountsThisNode(t *testing.T) {
	require.Equal(t, StatusHealthy, stateStatus(0, 0))
	require.Equal(t, StatusHealthy, stateStatus(2, 0))
	require.Equal(t, StatusDegraded, stateStatus(1, 1), "one of two peers down in a 3-node cluster")
	require.Equal(t, StatusUnhealthy, stateStatus(0, 2), "cut off from both peers")
	require.Equal(t, StatusUnhealthy, stateStatus(0, 1), "one of two nodes")
	require.Equal(t, StatusDegraded, stateStatus(2, 2), "two of four peers down in a 5-node cluster")
	require.Equal(t, StatusUnhealthy, stateStatus(1, 3))
}
