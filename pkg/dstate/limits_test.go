package dstate_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TestDecodeLimitsNameTheLimitExceeded checks that each configurable limit
// refuses an input just over it with a DeserializeError naming that limit,
// and accepts an input at it.
func TestDecodeLimitsNameTheLimitExceeded(t *testing.T) {
	payload := func(kind dstate.MessageKind, n int) []byte {
		return dstate.EncodeWire(&dstate.WireMessage{Kind: kind, State: "s", Source: "a", Data: make([]byte, n)})
	}
	feed := func(states, peers, notices int) []byte {
		m := dstate.WireMessage{Kind: dstate.KindBatchedChangeFeed, Source: "a"}
		for i := range notices {
			m.Notifications = append(m.Notifications, dstate.ChangeNotification{
				State: fmt.Sprintf("s%d", i%states), Source: dstate.NodeID(fmt.Sprintf("n%d", i%peers))})
		}
		return dstate.EncodeWire(&m)
	}
	cases := []struct {
		name  string
		lim   dstate.DecodeLimits
		ok    []byte
		over  []byte
		limit string
	}{
		{"snapshot", dstate.DecodeLimits{MaxSnapshot: 8, MaxDelta: 100}, payload(dstate.KindFullSnapshot, 8), payload(dstate.KindFullSnapshot, 9), dstate.LimitSnapshotBytes},
		{"delta", dstate.DecodeLimits{MaxSnapshot: 100, MaxDelta: 8}, payload(dstate.KindDeltaUpdate, 8), payload(dstate.KindDeltaUpdate, 9), dstate.LimitDeltaBytes},
		{"payload default of both", dstate.DecodeLimits{MaxPayload: 8}, payload(dstate.KindDeltaUpdate, 8), payload(dstate.KindFullSnapshot, 9), dstate.LimitSnapshotBytes},
		{"notices", dstate.DecodeLimits{MaxNotifications: 4}, feed(1, 1, 4), feed(1, 1, 5), dstate.LimitFeedNotices},
		{"states", dstate.DecodeLimits{MaxFeedStates: 3}, feed(3, 1, 9), feed(4, 1, 9), dstate.LimitFeedStates},
		{"peers", dstate.DecodeLimits{MaxFeedPeers: 3}, feed(1, 3, 9), feed(1, 4, 9), dstate.LimitFeedPeers},
		{"name", dstate.DecodeLimits{MaxName: 1}, payload(dstate.KindFullSnapshot, 0),
			dstate.EncodeWire(&dstate.WireMessage{Kind: dstate.KindRequestSnapshot, State: "long", Source: "a"}), dstate.LimitNameBytes},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dstate.DecodeWireLimits(tc.ok, tc.lim)
			require.NoError(t, err)
			_, err = dstate.DecodeWireLimits(tc.over, tc.lim)
			var de *dstate.DeserializeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, tc.limit, de.Limit)
			require.ErrorIs(t, err, dstate.ErrLimitExceeded)
			require.ErrorIs(t, err, dstate.ErrMalformed)
			require.Contains(t, err.Error(), "limit")
		})
	}
}

func TestMalformedInputIsNotALimit(t *testing.T) {
	_, err := dstate.DecodeWire([]byte{dstate.ProtocolVersion, byte(dstate.KindRequestSnapshot), 5, 'a'})
	require.ErrorIs(t, err, dstate.ErrMalformed)
	require.False(t, errors.Is(err, dstate.ErrLimitExceeded), "a truncated input is not over a limit: %v", err)
}
