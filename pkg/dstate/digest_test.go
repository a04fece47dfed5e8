package dstate_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

func digest(from dstate.NodeID, entries ...dstate.ChangeNotification) *dstate.WireMessage {
	m := dstate.NewDigest(from, 0, entries)
	return &m
}

// TestDigestBehindPullsExactlyOnce: a digest that shows the view of a peer
// to be behind makes an ActivePush engine send one RequestSnapshot to that
// peer; the same digest again while the request is outstanding sends
// nothing, and after the pull timeout it asks again.
func TestDigestBehindPullsExactlyOnce(t *testing.T) {
	e, clock := newCounterEngine(t, dstate.DefaultStateConfig())
	e.HandleWire(counterSnapshot("n2", gen(peerInc, 3), 3))
	d := digest("n2", notice("counter", "n2", gen(peerInc, 5)), notice("other", "n2", gen(1, 1)))

	require.Equal(t, []string{"send(n2, RequestSnapshot(counter by n1))"}, describe(e.HandleWire(d)))
	require.Empty(t, describe(e.HandleWire(d)), "a second digest while the pull is outstanding")
	m := e.Metrics()
	require.Equal(t, uint64(1), m.SnapshotRequestsSent)
	require.Equal(t, uint64(2), m.DigestsBehind)

	clock.Advance(dstate.DefaultPullTimeout)
	require.Equal(t, []string{"send(n2, RequestSnapshot(counter by n1))"}, describe(e.HandleWire(d)),
		"after the pull timeout the digest asks again")

	// The answer brings the view up to date; the digest is then confirmed.
	e.HandleWire(counterSnapshot("n2", gen(peerInc, 5), 9))
	require.Empty(t, describe(e.HandleWire(d)))
	v, _ := e.Views().Get("n2")
	require.Equal(t, gen(peerInc, 5), v.Generation)
}

// TestDigestCases covers the outcomes of one digest entry by what the
// receiver holds.
func TestDigestCases(t *testing.T) {
	lazy := dstate.StateConfig{SyncStrategy: dstate.FeedLazyPullStrategy(), PullTimeout: time.Second}
	cases := []struct {
		name        string
		cfg         dstate.StateConfig
		held        *dstate.Generation // nil: no view of n2
		joined      bool
		stale       bool // a pull timeout passes after the join
		announced   dstate.Generation
		wantActs    []string
		wantGen     dstate.Generation
		wantPending dstate.Generation
	}{
		{"same generation confirms", dstate.DefaultStateConfig(), ptr(gen(peerInc, 3)), false, false, gen(peerInc, 3), []string{}, gen(peerInc, 3), dstate.Generation{}},
		{"older is ignored", dstate.DefaultStateConfig(), ptr(gen(peerInc, 3)), false, false, gen(peerInc, 2), []string{}, gen(peerInc, 3), dstate.Generation{}},
		{"older incarnation is ignored", dstate.DefaultStateConfig(), ptr(gen(peerInc, 3)), false, false, gen(peerInc-1, 9), []string{}, gen(peerInc, 3), dstate.Generation{}},
		{"newer incarnation pulls", dstate.DefaultStateConfig(), ptr(gen(peerInc, 3)), false, false, gen(peerInc+1, 0), []string{"send(n2, RequestSnapshot(counter by n1))"}, gen(peerInc, 3), dstate.Generation{}},
		{"no view pulls", dstate.DefaultStateConfig(), nil, false, false, gen(peerInc, 1), []string{"send(n2, RequestSnapshot(counter by n1))"}, dstate.Generation{}, dstate.Generation{}},
		{"fresh placeholder waits for the join snapshot", lazy, nil, true, false, gen(peerInc, 1), []string{}, dstate.Generation{}, gen(0, 1)},
		{"old placeholder pulls", lazy, nil, true, true, gen(peerInc, 1), []string{"send(n2, RequestSnapshot(counter by n1))"}, dstate.Generation{}, gen(0, 1)},
		{"lazy state marks pending", lazy, ptr(gen(peerInc, 3)), false, false, gen(peerInc, 7), []string{}, gen(peerInc, 3), gen(peerInc, 7)},
		{"zero generation is ignored", dstate.DefaultStateConfig(), nil, false, false, dstate.Generation{}, []string{}, dstate.Generation{}, dstate.Generation{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, clock := newCounterEngine(t, tc.cfg)
			if tc.joined {
				e.OnNodeJoined("n2")
			}
			if tc.stale {
				clock.Advance(time.Second)
			}
			if tc.held != nil {
				e.HandleWire(counterSnapshot("n2", *tc.held, 3))
			}
			got := describe(e.HandleWire(digest("n2", notice("counter", "n2", tc.announced))))
			require.Equal(t, tc.wantActs, got)
			v, ok := e.Views().Get("n2")
			if tc.held == nil && !tc.joined {
				require.False(t, ok, "no view is created from a digest")
				return
			}
			require.True(t, ok)
			require.Equal(t, tc.wantGen, v.Generation)
			require.Equal(t, tc.wantPending, v.Pending)
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestDigestRenewsFreshness: a digest of the generation held renews the
// view's freshness, so an idle peer's view does not go stale between
// digests, as it does without one.
func TestDigestRenewsFreshness(t *testing.T) {
	e, clock := newCounterEngine(t, dstate.DefaultStateConfig())
	e.HandleWire(counterSnapshot("n2", gen(peerInc, 3), 3))
	clock.Advance(10 * time.Second)
	require.Equal(t, []dstate.NodeID{"n2"}, e.Query(time.Second).Stale)
	e.HandleWire(digest("n2", notice("counter", "n2", gen(peerInc, 3))))
	require.True(t, e.Query(time.Second).Fresh())
}

// TestDigestClearsTheMarkOfAPeerBackFromAFailure: a peer back from a
// failure has its view marked stale until it says where it stands; a
// digest at the view's generation says so, and an unchanged owner sends
// nothing else.
func TestDigestClearsTheMarkOfAPeerBackFromAFailure(t *testing.T) {
	e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
	e.HandleWire(counterSnapshot("n2", gen(peerInc, 3), 3))
	e.OnNodeFailed("n2")
	e.OnNodeJoined("n2")
	v, ok := e.Views().Get("n2")
	require.True(t, ok)
	require.True(t, v.HasPending(), "a peer back from a failure is stale until it answers")
	e.HandleWire(digest("n2", notice("counter", "n2", gen(peerInc, 3))))
	v, _ = e.Views().Get("n2")
	require.False(t, v.HasPending(), "pending %s after the owner confirmed %s", v.Pending, v.Generation)
	require.True(t, e.Query(time.Second).Fresh())
}

// TestDigestIgnoredFromSelfAndDeparted: digests from the node itself and
// from departed nodes change nothing.
func TestDigestIgnoredFromSelfAndDeparted(t *testing.T) {
	e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
	require.Empty(t, describe(e.HandleWire(digest(self, notice("counter", self, gen(ownInc, 9))))))
	e.OnNodeJoined("n3")
	e.OnNodeLeft("n3")
	require.Empty(t, describe(e.HandleWire(digest("n3", notice("counter", "n3", gen(peerInc, 9))))))
	require.Equal(t, uint64(1), e.Metrics().DepartedIgnored)
}

// TestDigestEntryIsThePublishedGeneration: the own entry announces the
// published view, not a prepared mutation.
func TestDigestEntryIsThePublishedGeneration(t *testing.T) {
	e, _ := newCounterEngine(t, dstate.DefaultStateConfig())
	e.Mutate(func(c *dstatetest.Counter) { c.Count++ }, dstate.Suppress)
	require.Equal(t, notice("counter", self, gen(ownInc, 1)), e.DigestEntry())
	e.Prepare(func(c *dstatetest.Counter) { c.Count++ }, dstate.Default)
	require.Equal(t, notice("counter", self, gen(ownInc, 1)), e.DigestEntry())
	e.Commit()
	require.Equal(t, notice("counter", self, gen(ownInc, 2)), e.DigestEntry())
}

// TestDigestDecodeRefusesHostileInput: entry counts over the limit or
// beyond the input, and entries out of order or naming a state twice, are
// refused with errors that say what was wrong.
func TestDigestDecodeRefusesHostileInput(t *testing.T) {
	entries := func(n int) []dstate.ChangeNotification {
		out := make([]dstate.ChangeNotification, n)
		for i := range out {
			out[i] = notice(fmt.Sprintf("s%04d", i), "n2", gen(1, uint64(i)))
		}
		return out
	}
	ok := dstate.NewDigest("n2", 1, entries(4))
	_, err := dstate.DecodeWireLimits(dstate.EncodeWire(&ok), dstate.DecodeLimits{MaxDigestEntries: 4})
	require.NoError(t, err)

	over := dstate.NewDigest("n2", 1, entries(5))
	_, err = dstate.DecodeWireLimits(dstate.EncodeWire(&over), dstate.DecodeLimits{MaxDigestEntries: 4})
	var de *dstate.DeserializeError
	require.ErrorAs(t, err, &de)
	require.Equal(t, dstate.LimitDigestEntries, de.Limit)
	require.ErrorIs(t, err, dstate.ErrLimitExceeded)

	// A count that the input cannot hold is refused before allocating.
	huge := []byte{dstate.ProtocolVersion, byte(dstate.KindDigest), 2, 'n', '2', 0, 0xff, 0x1f}
	_, err = dstate.DecodeWire(huge)
	require.ErrorIs(t, err, dstate.ErrMalformed)
	require.Contains(t, err.Error(), "cannot fit")

	// Out of order, or a state named twice (NewDigest sorts and
	// deduplicates, so the message is built by hand).
	for _, names := range [][]string{{"b", "a"}, {"a", "a"}} {
		m := dstate.WireMessage{Kind: dstate.KindDigest, Source: "n2"}
		for _, n := range names {
			m.Notifications = append(m.Notifications, notice(n, "n2", gen(1, 1)))
		}
		_, err = dstate.DecodeWire(dstate.EncodeWire(&m))
		require.ErrorIs(t, err, dstate.ErrMalformed, "%v", names)
		require.Contains(t, err.Error(), "increasing state order")
	}
}

// TestNewDigestSortsAndSetsSource checks the digest builder.
func TestNewDigestSortsAndSetsSource(t *testing.T) {
	m := dstate.NewDigest("n1", 7, []dstate.ChangeNotification{
		{State: "b", Generation: gen(1, 2)}, {State: "a", Generation: gen(1, 1)}, {State: "b", Generation: gen(1, 3)},
	})
	require.Equal(t, "Digest(from n1: a@n1 v1:1, b@n1 v1:2)", m.String())
}
