package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/stretchr/testify/require"
)

func TestSendReceiveThreeNodes(t *testing.T) {
	ids := []dstate.NodeID{"a", "b", "c"}
	nodes := map[dstate.NodeID]*testNode{}
	for _, id := range ids {
		nodes[id] = startNode(t, string(id), nil)
	}
	for _, from := range ids {
		for _, to := range ids {
			if from != to {
				nodes[from].SetPeer(to, nodes[to].Addr())
			}
		}
	}
	for _, from := range ids {
		for _, to := range ids {
			if from != to {
				require.NoError(t, nodes[from].Send(to, []byte(fmt.Sprintf("%s->%s", from, to))))
			}
		}
	}
	for _, to := range ids {
		got := map[received]bool{}
		for range len(ids) - 1 {
			got[nodes[to].in.next(t)] = true
		}
		want := map[received]bool{}
		for _, from := range ids {
			if from != to {
				want[received{from: from, frame: fmt.Sprintf("%s->%s", from, to)}] = true
			}
		}
		require.Equal(t, want, got, "frames delivered to %s", to)
	}
	for _, id := range ids {
		require.Eventually(t, func() bool { return nodes[id].Stats().FramesOut == 2 }, waitTimeout, pollEvery)
		st := nodes[id].Stats()
		require.Equal(t, uint64(2), st.FramesIn, "FramesIn of %s", id)
		require.Equal(t, uint64(8), st.BytesIn, "BytesIn of %s", id)
		require.Equal(t, uint64(8), st.BytesOut, "BytesOut of %s", id)
	}
}

func TestOrderingOf10000Frames(t *testing.T) {
	const n = 10000
	a := startNode(t, "a", func(c *Config) { c.QueueSize = n })
	b := startNode(t, "b", nil)
	a.SetPeer("b", b.Addr())
	for i := range n {
		require.NoError(t, a.Send("b", binary.BigEndian.AppendUint32(nil, uint32(i))))
	}
	for i := range n {
		r := b.in.next(t)
		require.Equal(t, dstate.NodeID("a"), r.from)
		got := binary.BigEndian.Uint32([]byte(r.frame))
		require.Equal(t, uint32(i), got, "frame %d out of order", i)
	}
	require.Eventually(t, func() bool { return a.Stats().FramesOut == n }, waitTimeout, pollEvery)
	require.Equal(t, uint64(4*n), a.Stats().BytesOut)
	require.Equal(t, uint64(n), b.Stats().FramesIn)
	require.Equal(t, uint64(4*n), b.Stats().BytesIn)
}

func TestOversizedInboundFrameClosesConnection(t *testing.T) {
	b := startNode(t, "b", func(c *Config) { c.MaxFrameSize = 1024 })
	conn, br := rawDial(t, b.Addr(), handBuiltHello(ProtocolVersion, "test", "raw"))
	reply, err := readHandshake(br)
	require.NoError(t, err)
	require.Equal(t, kindHello, reply.kind)
	require.Equal(t, "b", reply.nodeID)

	// A frame within the limit is delivered...
	_, err = conn.Write(append(binary.BigEndian.AppendUint32(nil, 2), "ok"...))
	require.NoError(t, err)
	require.Equal(t, received{from: "raw", frame: "ok"}, b.in.next(t))

	// ...and a declared length over it closes the connection unread.
	const huge = 0x7FFFFFF0
	_, err = conn.Write(binary.BigEndian.AppendUint32(nil, huge))
	require.NoError(t, err)
	_, err = br.ReadByte()
	require.Error(t, err, "the connection must be closed")
	var nerr interface{ Timeout() bool }
	if errors.As(err, &nerr) {
		require.False(t, nerr.Timeout(), "connection still open: %v", err)
	}

	require.Eventually(t, func() bool { return b.Stats().OversizedFrames == 1 }, waitTimeout, pollEvery)
	logged := b.logs.waitLoggedError(t, "transport: inbound frame too large, closing connection", ErrFrameTooLarge)
	var fse *FrameSizeError
	require.ErrorAs(t, logged, &fse)
	require.Equal(t, uint64(huge), fse.Size)
	require.Equal(t, 1024, fse.Limit)
	require.Equal(t, uint64(1), b.Stats().FramesIn)
}

// handBuiltHello encodes a hello without appendHello, pinning the wire
// layout.
func handBuiltHello(version uint16, cluster, id string) []byte {
	b := []byte("DSTT")
	b = binary.BigEndian.AppendUint16(b, version)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(cluster)))
	b = append(b, cluster...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
	return append(b, id...)
}

func TestAcceptorRefusesBadHello(t *testing.T) {
	tests := []struct {
		name       string
		hello      []byte
		wantCode   byte
		wantReason string
		wantErr    error
	}{
		{"cluster mismatch", handBuiltHello(ProtocolVersion, "other", "x"), refuseCluster, `cluster name "other" does not match "test"`, ErrClusterMismatch},
		{"oversized cluster", handBuiltHello(ProtocolVersion, strings.Repeat("c", 300), "x"), refuseCluster, "cluster name of 300 bytes is longer than 256", ErrClusterMismatch},
		{"version mismatch", handBuiltHello(7, "test", "x"), refuseVersion, "protocol version 7 is not supported (want 1)", ErrProtocolVersion},
		{"empty node id", handBuiltHello(ProtocolVersion, "test", ""), refuseNodeID, "node ID is empty", ErrBadNodeID},
		{"oversized node id", handBuiltHello(ProtocolVersion, "test", strings.Repeat("n", 257)), refuseNodeID, "node ID of 257 bytes is longer than 256", ErrBadNodeID},
		{"own node id", handBuiltHello(ProtocolVersion, "test", "b"), refuseNodeID, `node ID "b" is this node's own ID`, ErrBadNodeID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := startNode(t, "b", nil)
			_, br := rawDial(t, b.Addr(), tt.hello)
			reply, err := readHandshake(br)
			require.NoError(t, err)
			require.Equal(t, kindRefuse, reply.kind)
			require.Equal(t, tt.wantCode, reply.code)
			require.Equal(t, tt.wantReason, reply.reason)
			_, err = br.ReadByte()
			require.ErrorIs(t, err, io.EOF, "the acceptor closes after refusing")

			logged := b.logs.waitLoggedError(t, "transport: inbound handshake failed", tt.wantErr)
			require.ErrorIs(t, logged, ErrHandshake)
			require.Contains(t, logged.Error(), tt.wantReason)
			require.Equal(t, uint64(1), b.Stats().HandshakeFailures)
		})
	}
}

func TestAcceptorDropsNonTransportConnection(t *testing.T) {
	b := startNode(t, "b", nil)
	_, br := rawDial(t, b.Addr(), []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	_, err := br.ReadByte()
	require.Error(t, err)
	b.logs.waitLoggedError(t, "transport: inbound handshake failed", ErrBadMagic)
	require.Equal(t, uint64(1), b.Stats().HandshakeFailures)
}

func TestClusterNameMismatchRefusedOnBothSides(t *testing.T) {
	a := startNode(t, "a", func(c *Config) { c.ClusterName = "a" })
	b := startNode(t, "b", func(c *Config) { c.ClusterName = "b" })
	b.SetPeer("a", a.Addr())
	require.NoError(t, b.Send("a", []byte("never delivered")))

	// The dialer reports the acceptor's reason.
	herr := b.peerHandshakeError(t, "a")
	require.True(t, herr.Refused)
	require.ErrorIs(t, herr, ErrClusterMismatch)
	require.ErrorIs(t, herr, ErrHandshake)
	require.Equal(t, `cluster name "b" does not match "a"`, herr.Reason)
	require.Equal(t, a.Addr(), herr.Addr)
	require.Contains(t, herr.Error(), "transport: handshake with "+a.Addr()+" refused: ")
	b.logs.waitLoggedError(t, "transport: outbound handshake failed", ErrClusterMismatch)

	// The acceptor logs and counts its side.
	logged := a.logs.waitLoggedError(t, "transport: inbound handshake failed", ErrClusterMismatch)
	require.Contains(t, logged.Error(), `cluster name "b" does not match "a"`)
	require.NotZero(t, a.Stats().HandshakeFailures)
	require.NotZero(t, b.Stats().HandshakeFailures)
	require.Zero(t, a.Stats().FramesIn)
	require.False(t, b.PeerStats()["a"].Connected)
}

func TestProtocolVersionMismatch(t *testing.T) {
	tests := []struct {
		name                      string
		dialerVer, acceptorVer    uint16
		wantReasonFromAcceptor    string
		wantDialerRefusedByRemote bool
	}{
		{"newer dialer", 2, 1, "protocol version 2 is not supported (want 1)", true},
		{"newer acceptor", 1, 2, "protocol version 1 is not supported (want 2)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acc := newNode(t, "acc", nil)
			acc.version = tt.acceptorVer
			acc.start(t)
			dia := startNode(t, "dia", nil)
			dia.version = tt.dialerVer
			dia.SetPeer("acc", acc.Addr())

			herr := dia.peerHandshakeError(t, "acc")
			require.Equal(t, tt.wantDialerRefusedByRemote, herr.Refused)
			require.ErrorIs(t, herr, ErrProtocolVersion)
			require.Equal(t, tt.wantReasonFromAcceptor, herr.Reason)
			logged := acc.logs.waitLoggedError(t, "transport: inbound handshake failed", ErrProtocolVersion)
			require.Contains(t, logged.Error(), tt.wantReasonFromAcceptor)
		})
	}
}

func TestDialerRefusesUnexpectedPeer(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	b.SetPeer("x", a.Addr()) // a stale address: "a" listens there, not "x"
	herr := b.peerHandshakeError(t, "x")
	require.False(t, herr.Refused)
	require.ErrorIs(t, herr, ErrUnexpectedPeer)
	require.Equal(t, `reached node "a", want "x"`, herr.Reason)
}

func TestReconnectDeliversFramesQueuedWhileDown(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	addr := b.Addr()
	a.SetPeer("b", addr)
	require.NoError(t, a.Send("b", []byte("before")))
	require.Equal(t, received{from: "a", frame: "before"}, b.in.next(t))

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, b.Close(ctx))
	a.waitConnected(t, "b", false)

	for i := range 3 {
		require.NoError(t, a.Send("b", []byte(fmt.Sprintf("queued %d", i))))
	}
	require.Equal(t, 3, a.PeerStats()["b"].QueueLen)

	b2 := startNode(t, "b", func(c *Config) { c.BindAddr = addr })
	for i := range 3 {
		require.Equal(t, received{from: "a", frame: fmt.Sprintf("queued %d", i)}, b2.in.next(t))
	}
	require.Equal(t, uint64(1), a.Stats().Reconnects)
	// Whether a redial failed before b2 listened depends on timing: the
	// writer may notice the hang-up only after b2 is up.
}

func TestQueueFullWhilePeerUnreachable(t *testing.T) {
	a := startNode(t, "a", func(c *Config) { c.QueueSize = 4 })
	a.SetPeer("b", freeAddr(t))
	for i := range 4 {
		require.NoError(t, a.Send("b", []byte{byte(i)}), "frame %d", i)
	}
	err := a.Send("b", []byte{4})
	require.ErrorIs(t, err, ErrQueueFull)
	require.Equal(t, uint64(1), a.Stats().QueueDrops)
	require.Equal(t, 4, a.PeerStats()["b"].QueueLen)
}

func TestDeadPeerDoesNotBlockLivePeer(t *testing.T) {
	a := startNode(t, "a", func(c *Config) { c.QueueSize = 8 })
	b := startNode(t, "b", nil)
	a.SetPeer("dead", freeAddr(t))
	a.SetPeer("b", b.Addr())
	for {
		if err := a.Send("dead", []byte("x")); err != nil {
			require.ErrorIs(t, err, ErrQueueFull)
			break
		}
	}
	for i := range 100 {
		require.NoError(t, a.Send("b", []byte(fmt.Sprint(i))))
		require.Equal(t, received{from: "a", frame: fmt.Sprint(i)}, b.in.next(t))
	}
	require.Eventually(t, func() bool { return a.PeerStats()["dead"].LastError != nil }, waitTimeout, pollEvery)
	require.False(t, a.PeerStats()["dead"].Connected)
}

func TestSetPeerMovesToNewAddress(t *testing.T) {
	a := startNode(t, "a", nil)
	b1 := startNode(t, "b", nil)
	b2 := startNode(t, "b", nil)
	a.SetPeer("b", b1.Addr())
	require.NoError(t, a.Send("b", []byte("one")))
	require.Equal(t, "one", b1.in.next(t).frame)

	a.SetPeer("b", b2.Addr())
	require.Equal(t, b2.Addr(), a.PeerStats()["b"].Addr)
	// Frames already on their way may still reach b1; keep sending until
	// one arrives at b2.
	require.Eventually(t, func() bool {
		require.NoError(t, a.Send("b", []byte("two")))
		select {
		case r := <-b2.in:
			return r.frame == "two"
		default:
			return false
		}
	}, waitTimeout, pollEvery)
}

func TestRemovePeer(t *testing.T) {
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	a.SetPeer("b", b.Addr())
	a.waitConnected(t, "b", true)
	a.RemovePeer("b")
	require.ErrorIs(t, a.Send("b", []byte("x")), ErrUnknownPeer)
	require.NotContains(t, a.PeerStats(), dstate.NodeID("b"))
	a.RemovePeer("b") // unknown: ignored
}

func TestSendErrors(t *testing.T) {
	a := startNode(t, "a", func(c *Config) { c.MaxFrameSize, c.MaxMessageSize = 16, 32 })
	a.SetPeer("b", freeAddr(t))

	err := a.Send("nobody", []byte("x"))
	require.ErrorIs(t, err, ErrUnknownPeer)

	err = a.Send("b", make([]byte, 33))
	require.ErrorIs(t, err, ErrFrameTooLarge)
	var fse *FrameSizeError
	require.ErrorAs(t, err, &fse)
	require.Equal(t, uint64(33), fse.Size)
	require.Equal(t, 32, fse.Limit)
	require.True(t, fse.Message)
	require.Equal(t, uint64(1), a.Stats().OversizedFrames)
	require.NoError(t, a.Send("b", make([]byte, 32)), "longer than a frame: sent as fragments")
}

func TestMessagesLongerThanAFrameAreFragmented(t *testing.T) {
	b := startNode(t, "b", func(c *Config) { c.MaxFrameSize, c.MaxMessageSize = 1024, 1<<20 })
	a := startNode(t, "a", func(c *Config) { c.MaxFrameSize, c.MaxMessageSize = 1024, 1<<20 })
	a.SetPeer("b", b.Addr())
	big := make([]byte, 100_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	require.NoError(t, a.Send("b", big))
	require.NoError(t, a.Send("b", []byte("after")))
	require.Equal(t, received{from: "a", frame: string(big)}, b.in.next(t), "the message arrives whole")
	require.Equal(t, received{from: "a", frame: "after"}, b.in.next(t))
}

func TestReadMessageBoundsFragments(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	require.NoError(t, writeMessage(w, []byte("0123456789"), 4))
	require.NoError(t, w.Flush())
	wire := buf.Bytes()
	require.Equal(t, 3*4+10, len(wire), "three fragments of 4, 4 and 2 bytes")

	got, err := readMessage(bytes.NewReader(wire), 4, 10)
	require.NoError(t, err)
	require.Equal(t, "0123456789", string(got))

	_, err = readMessage(bytes.NewReader(wire), 4, 9)
	var fse *FrameSizeError
	require.ErrorAs(t, err, &fse)
	require.True(t, fse.Message)
	require.Equal(t, 9, fse.Limit)

	_, err = readMessage(bytes.NewReader(wire[:9]), 4, 10)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "a message cut inside its fragments")
	_, err = readMessage(bytes.NewReader(wire[:8]), 4, 10)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "a message cut between its fragments")
}

func TestFaultHookDropsFrames(t *testing.T) {
	var drop atomic.Bool
	a := startNode(t, "a", func(c *Config) {
		c.FaultHook = func(to dstate.NodeID) bool { return !(to == "b" && drop.Load()) }
	})
	b := startNode(t, "b", nil)
	a.SetPeer("b", b.Addr())
	drop.Store(true)
	require.NoError(t, a.Send("b", []byte("dropped")))
	drop.Store(false)
	require.NoError(t, a.Send("b", []byte("kept")))
	require.Equal(t, "kept", b.in.next(t).frame)
	require.Equal(t, uint64(1), a.Stats().FaultDrops)
}

func TestCloseFlushesQueuedFrames(t *testing.T) {
	const n = 500
	a := startNode(t, "a", nil)
	b := startNode(t, "b", nil)
	a.SetPeer("b", b.Addr())
	for i := range n {
		require.NoError(t, a.Send("b", []byte(fmt.Sprint(i))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, a.Close(ctx))
	for i := range n {
		require.Equal(t, fmt.Sprint(i), b.in.next(t).frame)
	}
	require.Equal(t, uint64(n), a.Stats().FramesOut)
	require.Zero(t, a.Stats().FramesLost)
}

func TestCloseIsBoundedByContext(t *testing.T) {
	stall := newFakePeer(t, "stall")
	a := startNode(t, "a", func(c *Config) { c.MaxFrameSize = 1 << 20 })
	a.SetPeer("stall", stall.addr())
	a.waitConnected(t, "stall", true)
	frame := make([]byte, 1<<20)
	for range 64 { // far more than the socket buffers hold
		require.NoError(t, a.Send("stall", frame))
	}
	// The writer is stuck in a write to a peer that never reads.
	require.Eventually(t, func() bool { return a.PeerStats()["stall"].QueueLen < 64 }, waitTimeout, pollEvery)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := a.Close(ctx)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, elapsed, 5*time.Second, "Close took %s with a 100ms context", elapsed)
	require.NotZero(t, a.Stats().FramesLost)
}

func TestLifecycleErrors(t *testing.T) {
	a := newNode(t, "a", nil)
	require.Error(t, a.Start(nil))
	a.start(t)
	require.ErrorIs(t, a.Start(func(dstate.NodeID, []byte) {}), ErrAlreadyStarted)
	a.SetPeer("b", freeAddr(t))

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, a.Close(ctx))
	require.NoError(t, a.Close(ctx), "Close is idempotent")
	require.ErrorIs(t, a.Send("b", []byte("x")), ErrClosed)
	require.ErrorIs(t, a.Start(func(dstate.NodeID, []byte) {}), ErrClosed)
	a.SetPeer("c", freeAddr(t)) // ignored after Close
	require.NotContains(t, a.PeerStats(), dstate.NodeID("c"))
}

func TestCloseWithoutStart(t *testing.T) {
	a := newNode(t, "a", nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, a.Close(ctx))
}
