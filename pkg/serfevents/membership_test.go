package serfevents_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real serf on loopback; skipped with -short")
	}
}

func TestThreeNodesJoinThroughOneSeed(t *testing.T) {
	skipShort(t)
	c := newCluster(t, nil)
	for _, obs := range ids {
		for _, id := range ids {
			eventually(t, string(obs)+" gets joined("+string(id)+")", func() bool {
				return c.recs[obs].has(0, dstate.NodeJoined, id)
			})
			ev, _, _ := c.recs[obs].find(0, dstate.NodeJoined, id)
			require.Equal(t, c.cfgs[id].Tags[serfevents.TagTransport], ev.Tags[serfevents.TagTransport], "%s's tags at %s", id, obs)
			require.NotEmpty(t, ev.Tags[serfevents.TagBoot])
		}
	}
	members := c.ms["n2"].Members()
	require.Len(t, members, 3)
	for i, mem := range members {
		require.Equal(t, ids[i], mem.ID)
		require.Equal(t, serfevents.StatusAlive, mem.Status)
		require.Equal(t, c.ms[mem.ID].LocalNode().Addr, mem.Addr)
	}
	st := c.ms["n3"].Stats()
	require.True(t, st.Joined)
	require.Equal(t, 3, st.Alive)
	require.Len(t, st.Subscribers, 1)
	require.False(t, st.Encrypted)
}

func TestNewSubscriberGetsCurrentMembers(t *testing.T) {
	skipShort(t)
	c := newCluster(t, nil)
	r := subscribe(t, c.ms["n1"])
	eventually(t, "three joins", func() bool { return r.len() >= 3 })
	evs := r.events()[:3]
	for i, id := range ids {
		require.Equal(t, dstate.NodeJoined, evs[i].Kind)
		require.Equal(t, id, evs[i].Node)
	}
}

func TestGracefulLeaveIsNodeLeft(t *testing.T) {
	skipShort(t)
	c := newCluster(t, nil)
	require.NoError(t, c.ms["n3"].Leave(ctxT(t)))
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" gets left(n3)", func() bool { return c.recs[obs].has(0, dstate.NodeLeft, "n3") })
		require.False(t, c.recs[obs].has(0, dstate.NodeFailed, "n3"), "a graceful leave is not a failure")
		require.Equal(t, serfevents.StatusLeft, statusOf(c.ms[obs], "n3"))
	}
	require.NoError(t, c.ms["n3"].Close(ctxT(t)))
	require.NoError(t, c.ms["n3"].Close(ctxT(t)), "Close is idempotent")
	_, err := c.ms["n3"].Subscribe(func(dstate.ClusterEvent) {})
	require.ErrorIs(t, err, serfevents.ErrClosed)
}

func TestCrashIsFailedAndRestartIsJoined(t *testing.T) {
	skipShort(t)
	c := newCluster(t, nil)
	oldBoot := c.ms["n1"].Members()[2].Tags[serfevents.TagBoot]
	from := c.recs["n1"].len()
	stopped := time.Now()
	require.NoError(t, c.ms["n3"].Shutdown())

	// Within the failure detector's bound (plus slack for -race).
	bound := c.cfgs["n3"].Timing.FailureDetectionTime(3)
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		require.Eventually(t, func() bool { return c.recs[obs].has(from, dstate.NodeFailed, "n3") },
			2*bound+2*time.Second, 10*time.Millisecond, "%s gets failed(n3)", obs)
	}
	t.Logf("failure detected after %v (bound %v)", time.Since(stopped).Round(time.Millisecond), bound)
	require.False(t, c.recs["n1"].has(from, dstate.NodeLeft, "n3"))

	// Restart under the same name, same address and snapshot, no seeds: the
	// snapshot brings it back.
	cfg := c.cfgs["n3"]
	cfg.Seeds = nil
	failedAt := map[dstate.NodeID]int{}
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		_, failedAt[obs], _ = c.recs[obs].find(from, dstate.NodeFailed, "n3")
	}
	c.startNode("n3", cfg)
	for _, obs := range []dstate.NodeID{"n1", "n2"} {
		eventually(t, string(obs)+" gets joined(n3) again", func() bool {
			return c.recs[obs].has(failedAt[obs]+1, dstate.NodeJoined, "n3")
		})
	}
	ev, _, _ := c.recs["n1"].find(failedAt["n1"]+1, dstate.NodeJoined, "n3")
	require.NotEqual(t, oldBoot, ev.Tags[serfevents.TagBoot], "a restart has a new boot tag")
	c.waitAlive(ids...)
}

func TestQuickRestartIsJoinedAgain(t *testing.T) {
	skipShort(t)
	c := newCluster(t, nil)
	from := c.recs["n1"].len()
	require.NoError(t, c.ms["n3"].Shutdown())
	// Back at once, before the others can declare it failed.
	cfg := c.cfgs["n3"]
	c.startNode("n3", cfg)
	eventually(t, "n1 gets joined(n3) after the restart", func() bool {
		return c.recs["n1"].has(from, dstate.NodeJoined, "n3")
	})
	c.waitAlive(ids...)
}

func TestSetTagsIsNodeUpdated(t *testing.T) {
	skipShort(t)
	c := newCluster(t, nil)
	from := c.recs["n1"].len()
	tags := map[string]string{serfevents.TagTransport: "127.0.0.1:9999", serfevents.TagProtocol: "2"}
	require.NoError(t, c.ms["n2"].SetTags(ctxT(t), tags))
	require.Equal(t, tags, c.ms["n2"].Tags())
	for _, obs := range []dstate.NodeID{"n1", "n3"} {
		eventually(t, string(obs)+" gets updated(n2)", func() bool {
			ev, _, ok := c.recs[obs].find(from, dstate.NodeUpdated, "n2")
			return ok && ev.Tags[serfevents.TagTransport] == "127.0.0.1:9999" && ev.Tags[serfevents.TagProtocol] == "2"
		})
	}
	require.False(t, c.recs["n1"].has(from, dstate.NodeJoined, "n2"), "a tag change is not a restart")

	big := map[string]string{"x": strings.Repeat("y", serfevents.MaxTagsSize)}
	err := c.ms["n2"].SetTags(ctxT(t), big)
	var se *serfevents.TagsSizeError
	require.ErrorAs(t, err, &se)
	require.ErrorIs(t, err, serfevents.ErrTagsTooLarge)
	require.Greater(t, se.Size, serfevents.MaxTagsSize)
	require.Equal(t, tags, c.ms["n2"].Tags(), "a refused update changes nothing")
	require.Error(t, c.ms["n2"].SetTags(ctxT(t), map[string]string{serfevents.TagBoot: "x"}))
}

func TestUnsubscribeIsIdempotent(t *testing.T) {
	skipShort(t)
	c := newCluster(t, nil)
	m := c.ms["n1"]
	gone := &recorder{}
	id, err := m.Subscribe(gone.add)
	require.NoError(t, err)
	eventually(t, "initial joins", func() bool { return gone.len() == 3 })
	require.NoError(t, m.Unsubscribe(id))
	require.NoError(t, m.Unsubscribe(id))
	require.NoError(t, m.Unsubscribe(12345))
	require.Len(t, m.Stats().Subscribers, 1)

	from := c.recs["n1"].len()
	require.NoError(t, c.ms["n2"].SetTags(ctxT(t), map[string]string{"k": "v"}))
	eventually(t, "the other subscriber gets updated(n2)", func() bool {
		return c.recs["n1"].has(from, dstate.NodeUpdated, "n2")
	})
	require.Equal(t, 3, gone.len(), "no event after Unsubscribe")
}

func TestSubscribeAndUnsubscribeFromACallback(t *testing.T) {
	skipShort(t)
	m := start(t, testConfig("n1", t.TempDir()))
	inner := &recorder{}
	done := make(chan struct{})
	var self dstate.SubscriptionID
	ready := make(chan struct{})
	self, err := m.Subscribe(func(dstate.ClusterEvent) {
		<-ready
		_, err := m.Subscribe(inner.add)
		require.NoError(t, err)
		require.NoError(t, m.Unsubscribe(self))
		close(done)
	})
	require.NoError(t, err)
	close(ready)
	<-done
	eventually(t, "inner subscriber gets joined(n1)", func() bool { return inner.has(0, dstate.NodeJoined, "n1") })
}

func TestSlowSubscriberDoesNotDelayOthers(t *testing.T) {
	skipShort(t)
	c := newCluster(t, func(cfg *serfevents.Config) { cfg.QueueSize = 4 })
	m := c.ms["n1"]
	release := make(chan struct{})
	slow := &recorder{}
	slowID, err := m.Subscribe(func(ev dstate.ClusterEvent) {
		<-release
		slow.add(ev)
	})
	require.NoError(t, err)
	dropped := func() uint64 {
		for _, s := range m.Stats().Subscribers {
			if s.ID == slowID {
				return s.Dropped
			}
		}
		return 0
	}

	// Tag updates from n2 until the slow subscriber's queue overflows; the
	// fast one keeps up with every round.
	var last string
	for i := 0; dropped() == 0; i++ {
		require.Less(t, i, 200, "the slow subscriber never overflowed")
		last = "v" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		require.NoError(t, c.ms["n2"].SetTags(ctxT(t), map[string]string{"round": last}))
		want := last
		eventually(t, "the fast subscriber gets round "+want, func() bool {
			evs := c.recs["n1"].events()
			ev := evs[len(evs)-1]
			return ev.Node == "n2" && ev.Tags["round"] == want
		})
	}
	require.Greater(t, m.Stats().EventsDropped, uint64(0))

	// Released, the slow one catches up and is resynced to the present.
	close(release)
	eventually(t, "the slow subscriber is resynced", func() bool {
		evs := slow.events()
		if len(evs) == 0 {
			return false
		}
		for _, s := range m.Stats().Subscribers {
			if s.ID == slowID && s.Resyncs == 1 && s.Queued == 0 {
				return evs[len(evs)-1].Node == "n3" && lastJoinedTag(slow, "n2") == last
			}
		}
		return false
	})
}

// lastJoinedTag is the "round" tag of the last NodeJoined for id.
func lastJoinedTag(r *recorder, id dstate.NodeID) string {
	evs := r.events()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == dstate.NodeJoined && evs[i].Node == id {
			return evs[i].Tags["round"]
		}
	}
	return ""
}

func TestDepartedNodesAreReaped(t *testing.T) {
	skipShort(t)
	c := newCluster(t, func(cfg *serfevents.Config) {
		cfg.TombstoneTimeout = 500 * time.Millisecond
		cfg.ReconnectTimeout = 500 * time.Millisecond
	})
	require.NoError(t, c.ms["n3"].Close(ctxT(t)))
	require.NoError(t, c.ms["n2"].Shutdown())
	eventually(t, "n1 reaps n3 (left) and n2 (failed)", func() bool {
		return c.recs["n1"].has(0, dstate.NodeReaped, "n3") && c.recs["n1"].has(0, dstate.NodeReaped, "n2")
	})
	require.True(t, c.recs["n1"].has(0, dstate.NodeLeft, "n3"))
	require.True(t, c.recs["n1"].has(0, dstate.NodeFailed, "n2"))
	members := c.ms["n1"].Members()
	require.Len(t, members, 1, "only n1 is left: %v", members)
}
