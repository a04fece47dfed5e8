package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/dstate-go/dstate/internal/backoff"
	"github.com/dstate-go/dstate/internal/ratelog"
	"github.com/dstate-go/dstate/pkg/dstate"
)

var (
	_ dstate.Transport    = (*Transport)(nil)
	_ dstate.LinkNotifier = (*Transport)(nil)
)

// Transport carries frames between nodes over TCP (optionally TLS). It
// implements dstate.Transport; all methods are safe for concurrent use.
type Transport struct {
	cfg     Config
	log     *slog.Logger
	ln      net.Listener
	version uint16 // ProtocolVersion; tests change it before dialing
	stats   counters
	// warnLog lets one warning per peer (or remote host) and kind through
	// per Config.LogInterval.
	warnLog ratelog.Limiter

	// life is the transport's own lifecycle context, cancelled when Close
	// stops waiting for flushes. Peers derive theirs from it to abort
	// dials. It is never a caller's context.
	life context.Context
	kill context.CancelFunc

	closing chan struct{} // closed when Close begins
	closed  chan struct{} // closed when Close has finished

	readers sync.WaitGroup // accept loop and inbound connections
	writers sync.WaitGroup // one per peer

	mu         sync.RWMutex
	started    bool
	closeBegun bool
	deliver    func(from dstate.NodeID, frame []byte)
	lent       func(from dstate.NodeID, frame []byte) (kept bool)     // StartLending's deliver
	batch      func(from dstate.NodeID, frames [][]byte, kept []bool) // StartLendingBatches' deliver
	directGap  time.Duration                                          // see directGap; tests set 0
	free       chan []byte                                            // frames given back by ReturnFrame
	peers      map[dstate.NodeID]*peer
	linkUp     func(peer dstate.NodeID) // see NotifyLinkUp

	// budget holds the memory of partially received messages.
	budget budget

	connMu  sync.Mutex
	killed  bool
	conns   map[net.Conn]struct{} // raw TCP connections, closed by Close
	inbound int                   // admitted inbound connections
	perHost map[string]int        // admitted inbound connections per remote IP
}

// New validates cfg, binds the listener (so Addr is known at once) and
// returns a transport that accepts nothing until Start. cfg is copied; its
// TLS config is cloned.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.TLS != nil {
		cfg.TLS = cfg.TLS.Clone()
	}
	ln, err := net.Listen("tcp", cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen on %s: %w", cfg.BindAddr, err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	life, kill := context.WithCancel(context.Background())
	t := &Transport{
		cfg:       cfg,
		directGap: directGap,
		free:      make(chan []byte, freeFrames),
		log:       cfg.Logger.With("node", string(cfg.NodeID)),
		ln:        ln,
		version:   ProtocolVersion,
		life:      life,
		kill:      kill,
		closing:   make(chan struct{}),
		closed:    make(chan struct{}),
		peers:     make(map[dstate.NodeID]*peer),
		conns:     make(map[net.Conn]struct{}),
		perHost:   make(map[string]int),
		budget:    budget{limit: cfg.MaxReassemblySize},
	}
	t.warnLog.Interval = cfg.LogInterval
	return t, nil
}

// warn logs a warning about key (a peer or a remote host) at most once per
// kind per Config.LogInterval, with the count of those held back.
func (t *Transport) warn(key, kind, msg string, args ...any) {
	ok, suppressed := t.warnLog.Allow(key + "\x00" + kind)
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	t.log.Warn(msg, args...)
}

// Addr returns Config.AdvertiseAddr if set, else the listener's address.
func (t *Transport) Addr() string {
	if t.cfg.AdvertiseAddr != "" {
		return t.cfg.AdvertiseAddr
	}
	return t.ln.Addr().String()
}

// Start begins accepting connections. Each inbound connection gets its own
// goroutine, which calls deliver once per frame with the node ID the
// connection's handshake named and a freshly allocated frame that deliver
// then owns. deliver may run concurrently for different connections and
// must not block for long: a slow deliver stalls that connection.
func (t *Transport) Start(deliver func(from dstate.NodeID, frame []byte)) error {
	if deliver == nil {
		return errors.New("transport: start: deliver is nil")
	}
	return t.start(deliver, nil, nil)
}

// StartLending is Start with frames lent to deliver (see
// [dstate.FrameLender]): a frame is valid until deliver returns, unless
// deliver returns true (kept), which gives it to the host; a frame not kept
// is read into again. Each connection then reads its messages into one
// buffer instead of allocating one per message.
func (t *Transport) StartLending(deliver func(from dstate.NodeID, frame []byte) (kept bool)) error {
	if deliver == nil {
		return errors.New("transport: start: deliver is nil")
	}
	return t.start(nil, deliver, nil)
}

// StartLendingBatches is StartLending with deliver given, at once, every
// frame of a connection that has already arrived in its read buffer (up
// to 256; at least one), in the order they arrived (see
// [dstate.BatchLender]). deliver marks in kept (all false when called)
// the frames it keeps, which are the host's as with StartLending; the
// others are valid until it returns. A host can then handle a run of
// messages together (see [dstate.Engine.HandleDeltaRun]).
func (t *Transport) StartLendingBatches(deliver func(from dstate.NodeID, frames [][]byte, kept []bool)) error {
	if deliver == nil {
		return errors.New("transport: start: deliver is nil")
	}
	return t.start(nil, nil, deliver)
}

// freeFrames bounds the frames ReturnFrame keeps for the readers.
const freeFrames = 256

// ReturnFrame gives back a frame that StartLending's deliver kept, once the
// host is done with it: a reader may read a later message into it. Frames
// of more than 64 KiB, and frames beyond the few kept for reuse, are left
// to the collector. It does not block.
func (t *Transport) ReturnFrame(frame []byte) {
	if cap(frame) == 0 || cap(frame) > growStep {
		return
	}
	select {
	case t.free <- frame[:0]:
	default:
	}
}

func (t *Transport) start(deliver func(from dstate.NodeID, frame []byte), lent func(from dstate.NodeID, frame []byte) bool,
	batch func(from dstate.NodeID, frames [][]byte, kept []bool)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closeBegun:
		return ErrClosed
	case t.started:
		return ErrAlreadyStarted
	}
	t.started = true
	t.deliver, t.lent, t.batch = deliver, lent, batch
	t.readers.Go(t.acceptLoop)
	return nil
}

// NotifyLinkUp implements dstate.LinkNotifier: fn is called with the peer's
// ID each time an outbound connection to it is established, the first
// time and after every reconnect, on the peer's writer goroutine before it
// writes anything on the new connection. Frames already written to a
// connection that broke may never have arrived, so the host uses it to
// repair what the peer may have missed. fn must not block. A later call
// replaces fn; nil turns it off.
func (t *Transport) NotifyLinkUp(fn func(peer dstate.NodeID)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.linkUp = fn
}

// linkUpFunc returns the NotifyLinkUp callback, or nil.
func (t *Transport) linkUpFunc() func(peer dstate.NodeID) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.linkUp
}

// SetPeer records the address of a peer and starts its writer, which
// connects at once and reconnects with backoff whenever the connection
// fails. A new address for a known peer moves its connection there;
// queued frames are kept. Calls after Close, or with an empty ID, are
// ignored.
func (t *Transport) SetPeer(id dstate.NodeID, addr string) {
	if id == "" {
		t.log.Warn("transport: SetPeer with an empty node ID ignored", "addr", addr)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closeBegun {
		return
	}
	if p, ok := t.peers[id]; ok {
		p.setAddr(addr)
		return
	}
	p := newPeer(t.life, id, addr, t.cfg.QueueSize)
	t.peers[id] = p
	t.writers.Go(func() { t.runPeer(p) })
}

// RemovePeer forgets a peer, closes its outbound connection and drops its
// queued frames (counted in Stats.FramesLost). Unknown peers are ignored.
func (t *Transport) RemovePeer(id dstate.NodeID) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// Send queues frame for the peer and returns at once. It fails with
// ErrClosed after Close began, ErrUnknownPeer for a peer SetPeer did not
// record, ErrFrameTooLarge (a *FrameSizeError) for a message over
// MaxMessageSize (one over MaxFrameSize goes as fragments), and ErrQueueFull when the peer's queue is full (the frame
// is dropped and counted). The transport never modifies frame, so the
// same frame may be sent to several peers; the caller must not modify it
// after the call.
func (t *Transport) Send(to dstate.NodeID, frame []byte) error {
	if len(frame) > t.cfg.MaxMessageSize {
		t.stats.oversizedFrames.Add(1)
		return fmt.Errorf("%w (to peer %q)", &FrameSizeError{Size: uint64(len(frame)), Limit: t.cfg.MaxMessageSize, Message: true}, to)
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closeBegun {
		return ErrClosed
	}
	p := t.peers[to]
	if p == nil {
		return fmt.Errorf("%w: %q", ErrUnknownPeer, to)
	}
	if hook := t.cfg.FaultHook; hook != nil && !hook(to) {
		t.stats.faultDrops.Add(1)
		return nil
	}
	p.pending.Add(1)
	if t.sendDirect(p, frame) {
		return nil
	}
	if p.queue.push(frame) {
		return nil
	}
	p.pending.Add(-1)
	t.stats.queueDrops.Add(1)
	return fmt.Errorf("%w: peer %q has %d frames queued", ErrQueueFull, to, p.queue.limit)
}

// Close stops accepting connections and refuses further Sends, lets the
// writers flush the frames already queued until ctx is done, then closes
// every connection and waits for all of the transport's goroutines. It
// returns ctx's error (wrapped) when ctx ended the flush early. A writer
// that is disconnected when Close begins makes at most one more attempt
// to connect. Later calls wait for the first to finish and return nil.
func (t *Transport) Close(ctx context.Context) error {
	t.mu.Lock()
	if t.closeBegun {
		t.mu.Unlock()
		select {
		case <-t.closed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("transport: close: %w", ctx.Err())
		}
	}
	t.closeBegun = true
	close(t.closing)
	t.mu.Unlock()

	_ = t.ln.Close()
	flushed := make(chan struct{})
	go func() {
		t.writers.Wait()
		close(flushed)
	}()
	var err error
	select {
	case <-flushed:
	case <-ctx.Done():
		err = fmt.Errorf("transport: close: %w", ctx.Err())
	}
	t.shutdown()
	<-flushed
	t.readers.Wait()
	close(t.closed)
	return err
}

// Stats returns a snapshot of the counters and gauges.
func (t *Transport) Stats() Stats {
	s := t.stats.snapshot()
	s.InboundConns = t.inboundConns()
	s.ReassemblyBytes = t.budget.inUse()
	return s
}

// PeerStats describes every known peer's outbound side.
func (t *Transport) PeerStats() map[dstate.NodeID]PeerStat {
	t.mu.RLock()
	peers := make([]*peer, 0, len(t.peers))
	for _, p := range t.peers {
		peers = append(peers, p)
	}
	t.mu.RUnlock()
	out := make(map[dstate.NodeID]PeerStat, len(peers))
	for _, p := range peers {
		out[p.id] = p.stat()
	}
	return out
}

// isClosing reports whether Close has begun.
func (t *Transport) isClosing() bool {
	select {
	case <-t.closing:
		return true
	default:
		return false
	}
}

// shutdown aborts everything still running: dials, handshakes, writes and
// reads.
func (t *Transport) shutdown() {
	t.kill()
	t.connMu.Lock()
	t.killed = true
	conns := t.conns
	t.conns = nil
	t.connMu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// track registers a raw connection for shutdown; false means the transport
// is shut down and the caller must close it.
func (t *Transport) track(raw net.Conn) bool {
	t.connMu.Lock()
	defer t.connMu.Unlock()
	if t.killed {
		return false
	}
	t.conns[raw] = struct{}{}
	return true
}

// untrack forgets a raw connection the caller has closed.
func (t *Transport) untrack(raw net.Conn) {
	t.connMu.Lock()
	defer t.connMu.Unlock()
	delete(t.conns, raw)
}

// acceptLoop accepts connections until the listener closes.
func (t *Transport) acceptLoop() {
	failures := 0
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.isClosing() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("transport: accept failed", "err", err)
			timer := time.NewTimer(backoff.Policy{Min: 5 * time.Millisecond, Max: time.Second, Jitter: true}.Delay(failures))
			failures++
			select {
			case <-timer.C:
			case <-t.closing:
				timer.Stop()
				return
			}
			continue
		}
		failures = 0
		raw := rawConn(c)
		host := remoteHost(raw)
		switch t.admit(raw, host) {
		case admitted:
			t.readers.Go(func() { t.serveInbound(c, raw, host) })
			continue
		case overMaxConns:
			t.stats.connsRefused.Add(1)
			t.warn(host, "max_conns", "transport: inbound connection refused: MaxConns connections are open",
				"addr", raw.RemoteAddr().String(), "limit", t.cfg.MaxConns)
		case overMaxConnsPerHost:
			t.stats.hostConnsRefused.Add(1)
			t.warn(host, "max_conns_per_host", "transport: inbound connection refused: MaxConnsPerHost connections from its host are open",
				"addr", raw.RemoteAddr().String(), "limit", t.cfg.MaxConnsPerHost)
		}
		_ = raw.Close()
	}
}

// rawConn returns the TCP connection under a TLS one.
func rawConn(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}
