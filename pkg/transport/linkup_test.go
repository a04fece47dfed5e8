package transport

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// linkEvents records NotifyLinkUp calls.
type linkEvents struct {
	mu  sync.Mutex
	ups []dstate.NodeID
}

func (l *linkEvents) up(p dstate.NodeID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ups = append(l.ups, p)
}

func (l *linkEvents) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ups)
}

// TestNotifyLinkUpOnConnectAndReconnect: the link callback runs when the
// writer connects to a peer and again when it reconnects after the peer
// went away, and a frame the callback sends goes out on the new link.
func TestNotifyLinkUpOnConnectAndReconnect(t *testing.T) {
	a := newNode(t, "a", nil)
	var ev linkEvents
	a.NotifyLinkUp(func(p dstate.NodeID) {
		ev.up(p)
		_ = a.Send(p, []byte("digest"))
	})
	a.start(t)
	b := startNode(t, "b", nil)
	addr := b.Addr()
	a.SetPeer("b", addr)
	require.Equal(t, received{from: "a", frame: "digest"}, b.in.next(t))
	require.Equal(t, 1, ev.count())

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	require.NoError(t, b.Close(ctx))
	a.waitConnected(t, "b", false)

	b2 := startNode(t, "b", func(c *Config) { c.BindAddr = addr })
	require.Equal(t, received{from: "a", frame: "digest"}, b2.in.next(t))
	require.Equal(t, 2, ev.count())
	require.Equal(t, []dstate.NodeID{"b", "b"}, ev.ups)
}
