package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/internal/ratelog"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Node hosts the registered states of one cluster member.
type Node struct {
	id     dstate.NodeID
	rt     dstate.ActorRuntime
	events dstate.ClusterEvents
	tr     dstate.Transport
	clock  dstate.Clock
	log    *slog.Logger
	limits dstate.DecodeLimits
	route  atomic.Pointer[routing] // see publishNames
	lender dstate.FrameLender      // the transport, when it lends frames
	stores map[dstate.Durability]dstate.EnvelopeStore
	cfg    Config

	mu      sync.Mutex
	shards  map[string]shard // the registered states by name
	members map[dstate.NodeID]struct{}
	closed  bool
	sub     dstate.SubscriptionID

	peerList atomic.Pointer[[]dstate.NodeID]

	feedMu    sync.Mutex
	agg       *dstate.ChangeFeedAggregator
	feedRef   dstate.ActorRef
	feedTimer dstate.TimerHandle
	feedEvery time.Duration

	// Digest anti-entropy (digest.go); guarded by feedMu.
	digestTimer dstate.TimerHandle
	digestOwed  map[dstate.NodeID]struct{} // peers a digest is scheduled for
	// down holds the members membership reported failed and not alive
	// since; guarded by mu.
	down map[dstate.NodeID]struct{}

	stats stats
	// peerLog lets one warning per peer and kind through per interval.
	peerLog ratelog.Limiter
}

// shard is the type-erased face of a registered state.
type shard interface {
	OnNodeJoined(node dstate.NodeID)
	OnNodeLeft(node dstate.NodeID)
	deliver(m *dstate.WireMessage) (ran bool)
	deliverOwned(in *inbound) (ok bool)
	// runs reports whether the state takes runs of deltas (deliverRun).
	runs() bool
	// deliverRun hands the actor a run of deltas; the actor recycles it.
	deliverRun(r *deltaRun)
	failed(node dstate.NodeID)
	reaped(node dstate.NodeID)
	health(ctx context.Context, maxStaleness time.Duration) (dstate.EngineHealth, error)
	metrics() dstate.SyncMetrics
	batchInterval() (time.Duration, bool)
	digestEntry() (dstate.ChangeNotification, bool)
	stop()
}

type stats struct {
	framesIn, decodeErrors, unknownState, sourceMismatch, noticeSourceMismatch, mailboxDrops, sendErrors atomic.Uint64
	digestsSent                                                                                          atomic.Uint64
	deltaRuns, deltasInRuns                                                                              atomic.Uint64
	// limits counts inbound messages over each decode limit, by name.
	limits map[string]*atomic.Uint64
}

// decodeLimitNames are the limits counted in Stats.LimitExceeded.
var decodeLimitNames = []string{
	dstate.LimitSnapshotBytes, dstate.LimitDeltaBytes, dstate.LimitNameBytes,
	dstate.LimitFeedNotices, dstate.LimitFeedStates, dstate.LimitFeedPeers, dstate.LimitDigestEntries,
	dstate.LimitChunkBytes,
}

// Stats are a node's host-level counters.
type Stats struct {
	FramesIn       uint64 // frames received
	DecodeErrors   uint64 // frames that did not decode
	UnknownState   uint64 // messages for a state not registered here
	SourceMismatch uint64 // sync messages whose source was not the sending peer
	MailboxDrops   uint64 // messages a state actor could not take
	SendErrors     uint64 // frames the transport refused
	// NoticeSourceMismatch counts change notices dropped for being about
	// another node than the sending peer (a node's feed carries only its
	// own notices; see dstate.ActionNoticeRejected).
	NoticeSourceMismatch uint64
	// DigestsSent counts digests handed to the transport, one per peer
	// (see DefaultDigestInterval).
	DigestsSent uint64
	// DeltaRuns counts runs of deltas from one peer to one state that
	// arrived together and went to the state at once (the engine publishes
	// the peer's view once per run; see dstate.Engine.HandleDeltaRun), and
	// DeltasInRuns the deltas in them.
	DeltaRuns, DeltasInRuns uint64
	// LimitExceeded counts inbound messages refused for being over a decode
	// limit, by limit name (the dstate.Limit… constants; every name is
	// present). They are included in DecodeErrors.
	LimitExceeded map[string]uint64
}

// New starts a node: it starts the transport and subscribes to membership
// events. Register states next.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{
		id: cfg.ID, rt: cfg.Runtime, events: cfg.Events, tr: cfg.Transport, clock: cfg.Clock, log: cfg.Logger,
		limits: cfg.Limits, cfg: cfg, stores: maps.Clone(cfg.Stores),
		shards: make(map[string]shard), members: make(map[dstate.NodeID]struct{}),
		agg: dstate.NewChangeFeedAggregator(cfg.ID),
	}
	if n.clock == nil {
		n.clock = dstate.SystemClock{}
	}
	if n.log == nil {
		n.log = slog.Default()
	}
	n.log = n.log.With("node", string(n.id))
	n.peerLog.Interval = cfg.LogInterval
	n.stats.limits = make(map[string]*atomic.Uint64, len(decodeLimitNames))
	for _, name := range decodeLimitNames {
		n.stats.limits[name] = new(atomic.Uint64)
	}
	n.peerList.Store(&[]dstate.NodeID{})
	n.publishNames()
	ref, err := n.rt.Spawn("dstate.feed."+string(n.id), func(msg any) { msg.(func())() })
	if err != nil {
		return nil, fmt.Errorf("node: spawn change-feed actor: %w", err)
	}
	n.feedRef = ref
	n.watchLinks()
	var err2 error
	if l, ok := n.tr.(dstate.BatchLender); ok {
		n.lender = l
		err2 = l.StartLendingBatches(n.deliverBatch)
	} else if l, ok := n.tr.(dstate.FrameLender); ok {
		n.lender = l
		err2 = l.StartLending(n.deliverFrame)
	} else {
		err2 = n.tr.Start(func(from dstate.NodeID, frame []byte) { n.deliverFrame(from, frame) })
	}
	if err := err2; err != nil {
		ref.Stop()
		return nil, fmt.Errorf("node: start transport: %w", err)
	}
	sub, err := n.events.Subscribe(n.onEvent)
	if err != nil {
		ref.Stop()
		_ = n.tr.Close(context.Background())
		return nil, fmt.Errorf("node: subscribe to cluster events: %w", err)
	}
	n.sub = sub
	n.startDigests()
	return n, nil
}

// ID returns the node's ID.
func (n *Node) ID() dstate.NodeID { return n.id }

// Addr returns the transport address peers reach this node at.
func (n *Node) Addr() string { return n.tr.Addr() }

// Members returns the current peers (members other than this node), sorted.
func (n *Node) Members() []dstate.NodeID { return slices.Clone(*n.peerList.Load()) }

// Stats returns the host-level counters.
func (n *Node) Stats() Stats {
	lim := make(map[string]uint64, len(n.stats.limits))
	for name, c := range n.stats.limits {
		lim[name] = c.Load()
	}
	return Stats{
		FramesIn: n.stats.framesIn.Load(), DecodeErrors: n.stats.decodeErrors.Load(), UnknownState: n.stats.unknownState.Load(),
		SourceMismatch: n.stats.sourceMismatch.Load(), NoticeSourceMismatch: n.stats.noticeSourceMismatch.Load(),
		MailboxDrops: n.stats.mailboxDrops.Load(), SendErrors: n.stats.sendErrors.Load(),
		DigestsSent: n.stats.digestsSent.Load(), DeltaRuns: n.stats.deltaRuns.Load(), DeltasInRuns: n.stats.deltasInRuns.Load(),
		LimitExceeded: lim,
	}
}

// States returns the registered state names, sorted.
func (n *Node) States() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stateNames()
}

// Metrics returns every registered state's engine counters by state name.
func (n *Node) Metrics() map[string]dstate.SyncMetrics {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]dstate.SyncMetrics, len(n.shards))
	for name, s := range n.shards {
		out[name] = s.metrics()
	}
	return out
}

// NodeHealth is the health of every state on a node.
type NodeHealth struct {
	Status dstate.HealthStatus // the worst of the states'
	States []dstate.EngineHealth
}

// Health returns every state's health at maxStaleness, and the worst status.
func (n *Node) Health(ctx context.Context, maxStaleness time.Duration) (NodeHealth, error) {
	n.mu.Lock()
	shards := make([]shard, 0, len(n.shards))
	for _, name := range n.stateNames() {
		shards = append(shards, n.shards[name])
	}
	n.mu.Unlock()
	var h NodeHealth
	for _, s := range shards {
		eh, err := s.health(ctx, maxStaleness)
		if err != nil {
			return h, err
		}
		h.States = append(h.States, eh)
		h.Status = max(h.Status, eh.Status)
	}
	return h, nil
}

// Close stops the node: it unsubscribes from membership, stops the timers and
// actors, and closes the transport (flushing until ctx is done).
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	shards := make([]shard, 0, len(n.shards))
	for _, s := range n.shards {
		shards = append(shards, s)
	}
	n.mu.Unlock()
	err := n.events.Unsubscribe(n.sub)
	n.feedMu.Lock()
	if n.feedTimer != nil {
		n.feedTimer.Cancel()
	}
	if n.digestTimer != nil {
		n.digestTimer.Cancel()
	}
	n.feedMu.Unlock()
	for _, s := range shards {
		s.stop()
	}
	n.feedRef.Stop()
	return errors.Join(err, n.tr.Close(ctx))
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// onEvent applies a membership event. It runs on the membership layer's
// goroutine and never blocks: states get the event through their mailboxes.
func (n *Node) onEvent(ev dstate.ClusterEvent) {
	if ev.Node == n.id || ev.Node == "" {
		return
	}
	addr := ev.Tags[TransportTag]
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	_, member := n.members[ev.Node]
	var joined, left, reaped, alive bool
	switch ev.Kind {
	case dstate.NodeJoined, dstate.NodeUpdated:
		if addr != "" {
			n.tr.SetPeer(ev.Node, addr)
		}
		if !member || ev.Kind == dstate.NodeJoined {
			n.members[ev.Node] = struct{}{}
			joined = true
		}
	case dstate.NodeLeft, dstate.NodeReaped:
		if member {
			delete(n.members, ev.Node)
			left = true
		}
		if ev.Kind == dstate.NodeReaped {
			reaped = true
		}
	case dstate.NodeFailed:
	}
	alive = n.trackDown(ev.Kind, ev.Node)
	n.publishPeers()
	shards := n.shardList()
	n.mu.Unlock()

	switch {
	case joined:
		n.log.Debug("node joined", "peer", string(ev.Node), "addr", addr)
		for _, s := range shards {
			s.OnNodeJoined(ev.Node)
		}
	case left:
		n.log.Debug("node left", "peer", string(ev.Node), "event", ev.Kind.String())
		n.tr.RemovePeer(ev.Node)
		for _, s := range shards {
			s.OnNodeLeft(ev.Node)
		}
	case ev.Kind == dstate.NodeFailed:
		n.log.Info("node failed", "peer", string(ev.Node))
		for _, s := range shards {
			s.failed(ev.Node)
		}
	}
	if alive {
		_ = n.feedRef.Send(func() { n.sendDigestToMember(ev.Node) })
	}
	if reaped {
		n.tr.RemovePeer(ev.Node)
		for _, s := range shards {
			s.reaped(ev.Node)
		}
	}
}

// stateNames returns the registered state names, sorted; n.mu must be held.
func (n *Node) stateNames() []string {
	return slices.Sorted(maps.Keys(n.shards))
}

// shardList returns the shards sorted by name; n.mu must be held.
func (n *Node) shardList() []shard {
	names := n.stateNames()
	out := make([]shard, len(names))
	for i, name := range names {
		out[i] = n.shards[name]
	}
	return out
}

// publishPeers refreshes the broadcast list; n.mu must be held.
func (n *Node) publishPeers() {
	ids := make([]dstate.NodeID, 0, len(n.members))
	for id := range n.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	n.peerList.Store(&ids)
	n.publishNames()
}

// routing is what deliverFrame reads for every inbound frame without
// taking n.mu: the strings decoding reuses and the states by name. It is
// never modified once published.
type routing struct {
	names  map[string]string // dstate.DecodeLimits.Names
	shards map[string]shard
}

// publishNames refreshes the routing of inbound frames: the strings
// decoding reuses for the names it meets most (dstate.DecodeLimits.Names:
// this node's ID, its members' IDs and its states' names) and the states by
// name; n.mu must be held.
func (n *Node) publishNames() {
	names := make(map[string]string, 1+len(n.members)+len(n.shards))
	names[string(n.id)] = string(n.id)
	for id := range n.members {
		names[string(id)] = string(id)
	}
	for name := range n.shards {
		names[name] = name
	}
	n.route.Store(&routing{names: names, shards: maps.Clone(n.shards)})
}

// inbound is a decoded message with the frame it was decoded from, pooled:
// a message that one state receives goes to its actor as an *inbound, and
// the last of deliverFrame and the actor to finish with it recycles it
// (see release).
type inbound struct {
	msg   dstate.WireMessage
	frame []byte
	node  *Node
	// refs counts who is done with it: deliverFrame once the actor has it,
	// the actor once it has handled it. The second recycles it.
	refs atomic.Int32
}

var inbounds = sync.Pool{New: func() any { return new(inbound) }}

// release is called once by deliverFrame and once by the actor. The second
// call recycles the record; it reports whether it did. When the actor is
// second (it handled the message after deliverFrame returned, which then
// told the transport the frame was kept), it also gives the frame back to a
// lending transport.
func (in *inbound) release(byActor bool) bool {
	if in.refs.Add(1) != 2 {
		return false
	}
	if byActor && in.node.lender != nil {
		in.node.lender.ReturnFrame(in.frame)
	}
	in.msg, in.frame, in.node = dstate.WireMessage{}, nil, nil
	in.refs.Store(0)
	inbounds.Put(in)
	return true
}

// deliverFrame decodes an inbound frame and routes it to its state's actor.
// It reports whether the frame is still in use (kept: the message was
// queued for the actor and not handled yet); a transport that lends frames
// (dstate.FrameLender) reuses the others, and gets kept ones back once
// handled.
func (n *Node) deliverFrame(from dstate.NodeID, frame []byte) (kept bool) {
	n.stats.framesIn.Add(1)
	return n.route1(from, frame)
}

// route1 is deliverFrame without counting the frame.
func (n *Node) route1(from dstate.NodeID, frame []byte) (kept bool) {
	in := inbounds.Get().(*inbound)
	in.node, in.frame = n, frame
	mp := &in.msg
	recycle := true // until an actor may hold it
	defer func() {
		if recycle {
			in.msg, in.frame, in.node = dstate.WireMessage{}, nil, nil
			inbounds.Put(in)
		}
	}()
	r := n.route.Load()
	if !n.decode(from, frame, r, mp) {
		return false
	}
	m := mp
	if m.Kind == dstate.KindBatchedChangeFeed {
		n.dropForeignNotices(from, m)
	}
	if m.Kind == dstate.KindBatchedChangeFeed || m.Kind == dstate.KindDigest {
		var targets []shard
		for i := range m.Notifications {
			if s, ok := r.shards[m.Notifications[i].State]; ok && !slices.Contains(targets, s) {
				targets = append(targets, s)
			}
		}
		// Shared by the targets: never recycled (kept), but it holds no
		// byte of frame (notices and digests decode into strings).
		recycle = false
		for _, s := range targets {
			s.deliver(m)
		}
		return false
	}
	s, ok := r.shards[m.State]
	if !ok {
		n.stats.unknownState.Add(1)
		n.log.Debug("dropping message for unknown state", "peer", string(from), "state", m.State)
		return false
	}
	if !s.deliverOwned(in) {
		return false // refused: recycled by the deferred call
	}
	recycle = false
	return !in.release(false)
}

// decode decodes an inbound frame from a peer into m, counting and logging
// a frame that does not decode or whose source is not the peer; it
// reports whether m is a message to route.
func (n *Node) decode(from dstate.NodeID, frame []byte, r *routing, m *dstate.WireMessage) bool {
	lim := n.limits
	lim.Names, lim.From = r.names, from
	var err error
	*m, err = dstate.DecodeWireLimits(frame, lim)
	if err != nil {
		n.stats.decodeErrors.Add(1)
		var de *dstate.DeserializeError
		kind := "decode"
		if errors.As(err, &de) && de.Limit != "" {
			kind = de.Limit
			if c := n.stats.limits[de.Limit]; c != nil {
				c.Add(1)
			}
		}
		n.warnPeer(from, kind, "dropping undecodable frame", "err", err)
		return false
	}
	if m.Source != from {
		n.stats.sourceMismatch.Add(1)
		n.warnPeer(from, "source", "dropping message whose source is not the sending peer", "source", string(m.Source))
		return false
	}
	return true
}

// deliverBatch is deliverFrame for frames that arrived together from one
// peer (see dstate.BatchLender). Deltas that follow each other go to
// their state's actor as one run (see dstate.Engine.HandleDeltaRun), which
// publishes the peer's view once; the other messages go one by one, in
// order.
func (n *Node) deliverBatch(from dstate.NodeID, frames [][]byte, kept []bool) {
	if len(frames) == 1 {
		kept[0] = n.deliverFrame(from, frames[0])
		return
	}
	r := n.route.Load()
	var b runBuilder
	for i, f := range frames {
		if len(f) >= 2 && f[0] == dstate.ProtocolVersion && dstate.MessageKind(f[1]) == dstate.KindDeltaUpdate {
			n.stats.framesIn.Add(1)
			m := &b.msg
			if !n.decode(from, f, r, m) {
				continue
			}
			s, ok := r.shards[m.State]
			switch {
			case !ok:
				n.stats.unknownState.Add(1)
				n.log.Debug("dropping message for unknown state", "peer", string(from), "state", m.State)
			case !s.runs() || len(m.Data) > maxRunDelta:
				b.flush()
				kept[i] = n.route1(from, f) // decoded again: seldom
			default:
				if b.to != s {
					b.flush()
					b.to = s
				}
				b.add(m)
			}
			continue
		}
		b.flush()
		kept[i] = n.deliverFrame(from, f)
	}
	b.flush()
}

// maxRunDelta is the largest delta deliverBatch copies into a run; a
// larger one goes alone, keeping its frame.
const maxRunDelta = 4 << 10

// runBuilder gathers a run of deltas for one state (see deliverBatch).
type runBuilder struct {
	msg dstate.WireMessage // the message being decoded
	to  shard
	run *deltaRun
}

// add appends m, a delta for b.to, to the run.
func (b *runBuilder) add(m *dstate.WireMessage) {
	if b.run == nil {
		b.run = deltaRuns.Get().(*deltaRun)
	}
	b.run.add(m)
}

// flush hands the run gathered so far to its state's actor.
func (b *runBuilder) flush() {
	if b.run == nil {
		return
	}
	r := b.run
	b.run = nil
	r.seal()
	b.to.deliverRun(r)
}

// deltaRun is a run of deltas from one peer to one state that arrived
// together, handed to the state's actor at once (see
// dstate.Engine.HandleDeltaRun). The messages' Data are copies in data, so
// their frames can be read into again at once. Pooled.
type deltaRun struct {
	msgs []dstate.WireMessage
	data []byte
	ends []int // the end of each message's Data in data
}

var deltaRuns = sync.Pool{New: func() any { return new(deltaRun) }}

// add appends a copy of m.
func (r *deltaRun) add(m *dstate.WireMessage) {
	r.data = append(r.data, m.Data...)
	r.ends = append(r.ends, len(r.data))
	r.msgs = append(r.msgs, *m)
	r.msgs[len(r.msgs)-1].Data = nil
}

// seal points each message's Data at its copy (data no longer grows).
func (r *deltaRun) seal() {
	start := 0
	for i, end := range r.ends {
		r.msgs[i].Data = r.data[start:end:end]
		start = end
	}
}

// recycle returns the run to the pool once its actor has handled it.
func (r *deltaRun) recycle() {
	clear(r.msgs)
	r.msgs, r.ends = r.msgs[:0], r.ends[:0]
	if cap(r.data) > 64<<10 {
		r.data = nil // do not keep a burst's worth of memory
	}
	r.data = r.data[:0]
	deltaRuns.Put(r)
}

// dropForeignNotices removes from a feed the notices about other nodes than
// the sending peer, counting and logging them. A node's feed carries only
// its own notices, so these are forged (or a bug): kept, they would let one
// member mark another member's view stale with any generation. The frame
// was decoded for this call alone, so it is filtered in place.
func (n *Node) dropForeignNotices(from dstate.NodeID, m *dstate.WireMessage) {
	kept := m.Notifications[:0]
	var first dstate.ChangeNotification
	dropped := 0
	for _, c := range m.Notifications {
		if c.Source == from {
			kept = append(kept, c)
			continue
		}
		if dropped == 0 {
			first = c
		}
		dropped++
	}
	if dropped == 0 {
		return
	}
	m.Notifications = kept
	n.stats.noticeSourceMismatch.Add(uint64(dropped))
	n.warnPeer(from, "notice", "dropping change notices about other nodes than the sending peer",
		"dropped", dropped, "first", first.String())
}

// warnPeer logs a warning about peer once per peer and kind per log
// interval, with the number of like warnings held back since the last.
func (n *Node) warnPeer(peer dstate.NodeID, kind, msg string, args ...any) {
	ok, suppressed := n.peerLog.Allow(string(peer) + "\x00" + kind)
	if !ok {
		return
	}
	n.log.Warn(msg, append([]any{"peer", string(peer), "suppressed", suppressed}, args...)...)
}

// broadcast sends one frame to every current peer.
func (n *Node) broadcast(frame []byte) {
	for _, p := range *n.peerList.Load() {
		n.send(p, frame)
	}
}

func (n *Node) send(to dstate.NodeID, frame []byte) {
	if err := n.tr.Send(to, frame); err != nil {
		n.stats.sendErrors.Add(1)
		n.warnPeer(to, "send", "send failed; the peer catches up once it drains", "err", err)
		n.digestSoon(to)
	}
}

// notify hands a change notice to the aggregator.
func (n *Node) notify(c dstate.ChangeNotification) {
	n.feedMu.Lock()
	n.agg.Notify(c)
	n.feedMu.Unlock()
}

func (n *Node) flushFeed() {
	n.feedMu.Lock()
	msg, ok := n.agg.Flush(n.clock.UnixMilli())
	n.feedMu.Unlock()
	if ok {
		n.broadcast(dstate.EncodeWire(&msg))
	}
}

// FlushChangeFeed broadcasts the pending change notices now (the aggregator
// also flushes on its timer).
func (n *Node) FlushChangeFeed() { n.flushFeed() }

// retimeFeed (re)starts the aggregator's flush timer at the smallest batch
// interval of the registered feed states; n.mu must be held.
func (n *Node) retimeFeed() {
	every := n.cfg.FeedInterval
	if every == 0 {
		for _, s := range n.shards {
			if d, ok := s.batchInterval(); ok && (every == 0 || d < every) {
				every = d
			}
		}
	}
	n.feedMu.Lock()
	defer n.feedMu.Unlock()
	if every == 0 || every == n.feedEvery {
		return
	}
	if n.feedTimer != nil {
		n.feedTimer.Cancel()
	}
	n.feedEvery = every
	flush := func() { n.flushFeed() }
	n.feedTimer = n.rt.SendInterval(n.feedRef, every, flush)
}
