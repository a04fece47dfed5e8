package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
	"github.com/dstate-go/dstate/pkg/node"
	"github.com/dstate-go/dstate/pkg/transport"
)

// loopCluster is nodes in this process, each with its own TCP transport on
// 127.0.0.1, sharing one goroutine runtime and a hand-fed membership feed.
type loopCluster struct {
	rt    *gosched.Runtime
	ev    *dstatetest.TestClusterEvents
	ids   []dstate.NodeID
	nodes []*node.Node
	trs   []*transport.Transport
	opts  loopOptions
}

type loopOptions struct {
	// MaxFrameSize of every transport (0: the transport's default).
	MaxFrameSize int
	// FeedInterval of every node (0: the smallest BatchInterval).
	FeedInterval time.Duration
	// DigestInterval of every node (0: node.DefaultDigestInterval,
	// negative: no digests).
	DigestInterval time.Duration
	// Drop, when set, drops every frame any node sends while it holds
	// true (a partition of the whole cluster).
	Drop *atomic.Bool
	// MaxMessageSize of every transport (0: the transport's default) and
	// Limits of every node (zero fields: dstate's defaults).
	MaxMessageSize int
	Limits         dstate.DecodeLimits
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newLoopCluster(n int, opts loopOptions) (*loopCluster, error) {
	cfg := gosched.DefaultConfig()
	cfg.Logger = quiet()
	rt, err := gosched.New(cfg)
	if err != nil {
		return nil, err
	}
	c := &loopCluster{rt: rt, ev: dstatetest.NewTestClusterEvents(), opts: opts}
	for i := range n {
		if _, err := c.add(dstate.NodeID(fmt.Sprintf("n%d", i))); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// add starts a node without announcing it.
func (c *loopCluster) add(id dstate.NodeID) (*node.Node, error) {
	tcfg := transport.DefaultConfig()
	tcfg.NodeID = id
	tcfg.ClusterName = "bench"
	tcfg.ReconnectBackoffMin = 10 * time.Millisecond
	tcfg.ReconnectBackoffMax = 100 * time.Millisecond
	tcfg.Logger = quiet()
	if c.opts.MaxFrameSize > 0 {
		tcfg.MaxFrameSize = c.opts.MaxFrameSize
	}
	if c.opts.MaxMessageSize > 0 {
		tcfg.MaxMessageSize = c.opts.MaxMessageSize
	}
	if drop := c.opts.Drop; drop != nil {
		tcfg.FaultHook = func(dstate.NodeID) bool { return !drop.Load() }
	}
	tr, err := transport.New(tcfg)
	if err != nil {
		return nil, err
	}
	n, err := node.New(node.Config{ID: id, Runtime: c.rt, Events: c.ev, Transport: tr, Logger: quiet(),
		FeedInterval: c.opts.FeedInterval, DigestInterval: c.opts.DigestInterval, Limits: c.opts.Limits})
	if err != nil {
		return nil, err
	}
	c.ids = append(c.ids, id)
	c.nodes = append(c.nodes, n)
	c.trs = append(c.trs, tr)
	return n, nil
}

// join announces node i to every node.
func (c *loopCluster) join(i int) {
	c.ev.Emit(dstate.ClusterEvent{Kind: dstate.NodeJoined, Node: c.ids[i], Tags: map[string]string{node.TransportTag: c.nodes[i].Addr()}})
}

func (c *loopCluster) joinAll() {
	for i := range c.nodes {
		c.join(i)
	}
}

// wireStats sums the transports' counters.
func (c *loopCluster) wireStats() transport.Stats {
	var t transport.Stats
	for _, tr := range c.trs {
		s := tr.Stats()
		t.FramesOut += s.FramesOut
		t.BytesOut += s.BytesOut
		t.KeepalivesOut += s.KeepalivesOut
		t.QueueDrops += s.QueueDrops
		t.FramesLost += s.FramesLost
		t.OversizedFrames += s.OversizedFrames
	}
	return t
}

// maxQueue returns the longest outbound queue of any transport now.
func (c *loopCluster) maxQueue() int {
	q := 0
	for _, tr := range c.trs {
		for _, p := range tr.PeerStats() {
			q = max(q, p.QueueLen)
		}
	}
	return q
}

// hostDrops sums the frames the nodes could not hand to a state actor or
// the transport.
func (c *loopCluster) hostDrops() (mailbox, send uint64) {
	for _, n := range c.nodes {
		s := n.Stats()
		mailbox += s.MailboxDrops
		send += s.SendErrors
	}
	return mailbox, send
}

func (c *loopCluster) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		_ = n.Close(ctx)
	}
	c.rt.Close()
}

// waitUntil polls cond every millisecond until it holds, ctx ends or
// timeout passes.
func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// errCanceled reports whether err is the end of ctx.
func errCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
