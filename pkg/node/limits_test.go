package node_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// syncBuffer is a log sink safe for the node's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestOverLimitMessagesAreCountedAndLoggedOncePerPeer floods a node with
// snapshots over its snapshot limit: every one is refused and counted under
// its limit's name, but the log names the peer once per interval.
func TestOverLimitMessagesAreCountedAndLoggedOncePerPeer(t *testing.T) {
	rt, err := gosched.New(gosched.DefaultConfig())
	require.NoError(t, err)
	t.Cleanup(rt.Close)
	var logs syncBuffer
	tcfg := transport.DefaultConfig()
	tcfg.NodeID, tcfg.ClusterName, tcfg.Logger = "n0", "test", quietLogger()
	tr, err := transport.New(tcfg)
	require.NoError(t, err)
	n, err := node.New(node.Config{ID: "n0", Runtime: rt, Events: dstatetest.NewTestClusterEvents(), Transport: tr,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Limits: dstate.DecodeLimits{MaxSnapshot: 64}, LogInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close(ctx) })

	sender := transport.DefaultConfig()
	sender.NodeID, sender.ClusterName, sender.Logger = "n1", "test", quietLogger()
	raw, err := transport.New(sender)
	require.NoError(t, err)
	require.NoError(t, raw.Start(func(dstate.NodeID, []byte) {}))
	t.Cleanup(func() { _ = raw.Close(ctx) })
	raw.SetPeer("n0", n.Addr())
	big := dstate.EncodeWire(&dstate.WireMessage{Kind: dstate.KindFullSnapshot, State: "counter", Source: "n1",
		Generation: dstate.Generation{Incarnation: 1, Age: 1}, WireVersion: 1, Data: make([]byte, 65)})
	const flood = 50
	for range flood {
		require.NoError(t, raw.Send("n0", big))
	}
	eventually(t, "every oversized snapshot counted", func() bool {
		return n.Stats().LimitExceeded[dstate.LimitSnapshotBytes] == flood
	})
	st := n.Stats()
	require.Equal(t, uint64(flood), st.DecodeErrors)
	require.Zero(t, st.LimitExceeded[dstate.LimitDeltaBytes])
	require.Contains(t, st.LimitExceeded, dstate.LimitFeedPeers, "every limit is reported, even at zero")
	require.Equal(t, 1, strings.Count(logs.String(), "dropping undecodable frame"), "one warning per peer per interval:\n%s", logs.String())
	require.Contains(t, logs.String(), "peer=n1")
	require.Contains(t, logs.String(), "snapshot payload of 65 bytes exceeds the limit of 64")
}
