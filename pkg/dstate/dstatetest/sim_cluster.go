package dstatetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// DefaultSimTick is the simulated time one tick of a [SimCluster] lasts
// when SimConfig.Tick is zero.
const DefaultSimTick = 100 * time.Millisecond

// Errors of the simulated cluster.
var (
	// ErrNotConverged: some live node's view of another live node differs
	// from that node's own view.
	ErrNotConverged = errors.New("dstatetest: not converged")
	// ErrUnknownNode: the node was never part of the cluster.
	ErrUnknownNode = errors.New("dstatetest: unknown node")
	// ErrNodeState: the operation does not apply to the node in its
	// current status (e.g. mutating a crashed node).
	ErrNodeState = errors.New("dstatetest: node status does not allow the operation")
	// ErrNoSuchState: the cluster does not run the named state.
	ErrNoSuchState = errors.New("dstatetest: state not simulated")
	// ErrNotIdle: messages, delayed broadcasts, change notices or
	// membership events were still on their way (see SimCluster.Idle).
	ErrNotIdle = errors.New("dstatetest: not idle")
	// ErrWrongValue: a view holds, at a generation its owner had, a value
	// the owner did not have at that generation (or a generation the
	// owner never had), or an owner published one generation with two
	// values.
	ErrWrongValue = errors.New("dstatetest: wrong value at a generation")
)

// SimStates selects which example states every simulated node runs.
type SimStates uint8

// The simulated states.
const (
	// SimCounter runs the simple Counter state ("counter").
	SimCounter SimStates = 1 << iota
	// SimGauges runs the delta Gauges state ("gauges").
	SimGauges
	// SimBoth runs both; it is what the zero SimStates means.
	SimBoth = SimCounter | SimGauges
)

// SimNodeStatus is the lifecycle status of a simulated node.
type SimNodeStatus uint8

// The node statuses.
const (
	// SimUp: running and a member; it sends and receives.
	SimUp SimNodeStatus = iota + 1
	// SimDown: crashed; still a member (peers consider it failed), its
	// engines are gone and messages to it are lost.
	SimDown
	// SimLeft: left the cluster gracefully; peers dropped its views.
	SimLeft
)

// String names the status ("up", "down", "left").
func (s SimNodeStatus) String() string {
	switch s {
	case SimUp:
		return "up"
	case SimDown:
		return "down"
	case SimLeft:
		return "left"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// DefaultSimStateConfig is the state configuration of a simulated state
// when none is given: active push, a full sync every 2 s (20 ticks of
// DefaultSimTick), a 1 s pull timeout and KeepStale.
func DefaultSimStateConfig() dstate.StateConfig {
	s := dstate.ActivePushStrategy()
	s.PeriodicFullSync = 2 * time.Second
	return dstate.StateConfig{SyncStrategy: s, PullTimeout: time.Second}
}

// SimConfig configures a [SimCluster]. The zero value is three nodes over a
// perfect network, seed 0. States, Counter, Gauges, CounterConfig and
// GaugesConfig choose the example states of [NewExampleSimCluster]; the
// clusters of [NewSimCluster] and [NewDeltaSimCluster] run the state they
// are given, configured by State, and reject them.
type SimConfig struct {
	// Seed seeds every random decision of the network (PCG).
	Seed uint64
	// Nodes is the initial number of nodes, named n1..nN (3 when zero,
	// unless Empty).
	Nodes int
	// Empty starts the cluster with no node (Nodes must be zero); AddNode
	// and AddNodeWith add them.
	Empty bool
	// State configures the state of NewSimCluster and NewDeltaSimCluster
	// (DefaultSimStateConfig when zero).
	State dstate.StateConfig
	// Tick is the simulated duration of one tick (DefaultSimTick when
	// zero). Durations in the configs and actions are rounded up to ticks.
	Tick time.Duration
	// States selects the states every node runs (both when zero).
	States SimStates
	// Counter and Gauges are the initial definitions of every node (their
	// versions); RestartWith can change them per node.
	Counter CounterState
	Gauges  GaugesState
	// CounterConfig and GaugesConfig configure the states
	// (DefaultSimStateConfig when zero; the zero StateConfig itself is
	// active push without periodic sync: set e.g. PullTimeout to ask for
	// that).
	CounterConfig dstate.StateConfig
	GaugesConfig  dstate.StateConfig
	// DeltaRuns hands the messages due in one tick from one node to
	// another, one after another, to the target's engines at once
	// (dstate.Engine.HandleDeltaRun), as a host does with the frames a
	// connection lends in one batch (dstate.BatchLender); their actions are
	// performed after the run. False hands each to dstate.Engine.HandleWire.
	DeltaRuns bool
	// DigestInterval, when positive, makes every running node send every
	// member a digest of its states' generations (dstate.NewDigest) at
	// this interval, each node at its own phase, and at once over a link
	// that ResetLink re-established. Zero sends no digests.
	DigestInterval time.Duration
	// MembershipDelay, when positive, delays every membership event (a
	// join, a failure, a leave) to each running node by its own random
	// number of ticks up to this duration, so nodes disagree for a while
	// about who is a member; events about one node reach a given node in
	// the order they happened. Zero tells every node at once.
	MembershipDelay time.Duration
	// SnapshotChunk, when positive, is the chunk size of every engine's
	// streamed snapshots (dstate.Engine.SetSnapshotChunking, window 2), so
	// that the small views of a simulation stream when the state's
	// definition is a dstate.ChunkedViewCodec. Zero keeps the default.
	SnapshotChunk int
	// Faults of the network; SetFaults changes them during a run.
	Faults Faults
	// Intercept, when set, decides the fate of every message sent (see
	// [SimInterceptor]) before Faults apply; SetInterceptor changes it
	// during a run.
	Intercept SimInterceptor
	// KeepTrace keeps a readable trace line per event and delivery
	// (Trace); the trace hash is computed either way.
	KeepTrace bool
	// Logf, when set, receives every cluster event line (e.g. t.Logf).
	Logf func(format string, args ...any)

	// brokenDelta makes every node's Gauges apply deltas wrongly (one
	// added to the value): a test hook proving that the monitor catches a
	// wrong value at a correct generation.
	brokenDelta bool
}

// SimCluster is a deterministic simulation of a dstate cluster: N nodes,
// each running one engine per simulated state (the state given to
// [NewSimCluster] or [NewDeltaSimCluster], or the example states of
// [NewExampleSimCluster]), a per-node
// ChangeFeedAggregator and the periodic sync timers, connected by a seeded
// in-memory network that carries the encoded wire bytes
// (dstate.EncodeWire/DecodeWire) with the configured [Faults]. Time is a
// [TestClock] advanced one tick per Step; nothing runs unless a method is
// called, and every iteration is in sorted order, so a run is a pure
// function of its seed and its calls ([SimCluster.TraceHash]).
//
// Membership events (a join, a crash, a leave) are told to every running
// member, at once or, with SimConfig.MembershipDelay, after a random delay
// per node. Every own value a node publishes is recorded per generation
// (and checked: no generation is ever reused for another value), and every
// mutation is saved as the node's persisted envelope, from which
// SimRestart.Restore restarts it through Engine.Restore. A SimCluster is
// not safe for concurrent use.
type SimCluster struct {
	cfg         SimConfig
	specs       []simSpec // the simulated states, sorted by name
	tick        time.Duration
	clock       *TestClock
	net         *simNet
	nodes       map[dstate.NodeID]*simNode
	order       []dstate.NodeID // every node ever created, sorted
	next        int
	batchTicks  int64
	digestTicks int64
	memberTicks int64

	// history holds every owner's encoded own value per generation.
	history map[histKey]string
	histErr error
	// mevents are the membership events not yet delivered; lastDue is the
	// due tick of the last event of each (target, subject) pair.
	mevents []memberEvent
	lastDue map[[2]dstate.NodeID]int64
	// memberSeq numbers the delivered membership events; leftTold is the
	// number of the last leave of owner delivered to observer.
	memberSeq uint64
	leftTold  map[[2]dstate.NodeID]uint64
}

// histKey names one generation of one owner's state.
type histKey struct {
	state string
	owner dstate.NodeID
	gen   dstate.Generation
}

// memberKind is the kind of a membership event.
type memberKind uint8

const (
	memberJoined memberKind = iota + 1
	memberFailed
	memberLeft
)

func (k memberKind) String() string {
	switch k {
	case memberJoined:
		return "joined"
	case memberFailed:
		return "failed"
	}
	return "left"
}

// memberEvent tells target (in its epoch) that subject joined, failed or
// left.
type memberEvent struct {
	due             int64
	target, subject dstate.NodeID
	epoch           int
	kind            memberKind
}

// simNode is one simulated host.
type simNode struct {
	c      *SimCluster
	id     dstate.NodeID
	status SimNodeStatus
	epoch  int   // number of starts
	born   int64 // tick of the last start
	// states holds the engines of the last start, one per spec, in the
	// order of SimCluster.specs; they stay after a crash or a leave (as
	// the node's definitions) and are replaced by a restart.
	states   []simState
	agg      *dstate.ChangeFeedAggregator
	digestAt int64             // phase of the node's digest timer
	lastInc  map[string]uint64 // per state, the highest incarnation it had
	store    *simEnvelopes     // the node's persisted envelopes
}

// SimRestart says how [SimCluster.RestartWith] starts a node again, or how
// [SimCluster.AddNodeWith] starts a new one.
type SimRestart struct {
	// States sets, per state, the node's definition (a rolling upgrade to
	// another version) or its start value; build the entries with a typed
	// cluster's Start and StartDef (Sim, DeltaSim). A value set here wins
	// over KeepValue; Restore wins over both.
	States []SimStateStart
	// KeepValue starts the new incarnation from the values the node had
	// (as if they were persisted but their generation was not); otherwise
	// the node starts empty.
	KeepValue bool
	// Counter and Gauges, when set, replace the node's definitions of the
	// example states (a rolling upgrade to another wire version).
	Counter *CounterState
	Gauges  *GaugesState
	// Restore starts the node from its persisted envelopes (saved after
	// every mutation) with Engine.Restore, keeping their generations, as a
	// host restarts; an envelope the (new) definition cannot read starts a
	// new incarnation with an empty value, above the stored one.
	// It takes precedence over KeepValue.
	Restore bool
}

// SimView is one node's view of one node's state at the time it was read.
type SimView struct {
	State      string
	Observer   dstate.NodeID // the node holding the view
	Owner      dstate.NodeID // the node the view is of (Observer for the own view)
	Generation dstate.Generation
	Pending    dstate.Generation // a newer generation announced by the feed, or zero
	Value      string            // the value, formatted (FormatCounter, GaugesView.String)
}

// newSimCluster validates the general fields of cfg, starts its nodes,
// each running specs, at tick 0 and has every pair exchange snapshots (the
// messages arrive from tick 1 on).
func newSimCluster(cfg SimConfig, specs []simSpec) (*SimCluster, error) {
	switch {
	case cfg.Nodes < 0:
		return nil, fmt.Errorf("dstatetest: SimConfig.Nodes %d is negative", cfg.Nodes)
	case cfg.Empty && cfg.Nodes != 0:
		return nil, fmt.Errorf("dstatetest: SimConfig.Empty with Nodes %d", cfg.Nodes)
	case cfg.Tick < 0:
		return nil, fmt.Errorf("dstatetest: SimConfig.Tick %s is negative", cfg.Tick)
	case cfg.DigestInterval < 0:
		return nil, fmt.Errorf("dstatetest: SimConfig.DigestInterval %s is negative", cfg.DigestInterval)
	case cfg.MembershipDelay < 0:
		return nil, fmt.Errorf("dstatetest: SimConfig.MembershipDelay %s is negative", cfg.MembershipDelay)
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, err
	}
	if cfg.Nodes == 0 && !cfg.Empty {
		cfg.Nodes = 3
	}
	if cfg.Tick == 0 {
		cfg.Tick = DefaultSimTick
	}
	slices.SortFunc(specs, func(a, b simSpec) int { return strings.Compare(a.name(), b.name()) })
	for i := 1; i < len(specs); i++ {
		if specs[i].name() == specs[i-1].name() {
			return nil, fmt.Errorf("dstatetest: two simulated states are named %q", specs[i].name())
		}
	}
	c := &SimCluster{
		cfg:      cfg,
		specs:    specs,
		tick:     cfg.Tick,
		clock:    NewTestClock(),
		net:      newSimNet(cfg.Seed, cfg.KeepTrace, cfg.Logf),
		nodes:    make(map[dstate.NodeID]*simNode),
		history:  make(map[histKey]string),
		lastDue:  make(map[[2]dstate.NodeID]int64),
		leftTold: make(map[[2]dstate.NodeID]uint64),
	}
	c.net.faults = cfg.Faults
	c.net.intercept = cfg.Intercept
	var batch time.Duration
	for _, sp := range specs {
		if b := sp.config().SyncStrategy.BatchInterval(); batch == 0 || b < batch {
			batch = b
		}
	}
	c.batchTicks = c.ticks(batch)
	c.digestTicks = c.ticks(cfg.DigestInterval)
	c.memberTicks = c.ticks(cfg.MembershipDelay)
	c.net.event("cluster seed=%d nodes=%d faults: %s", cfg.Seed, cfg.Nodes, cfg.Faults)
	for range cfg.Nodes {
		id := c.newID()
		n := &simNode{c: c, id: id}
		c.nodes[id] = n
		c.order = append(c.order, id)
		if err := c.start(n, SimRestart{}); err != nil {
			return nil, err
		}
		c.net.event("start %s %s", id, c.generations(n))
	}
	slices.Sort(c.order)
	for _, a := range c.order {
		for _, b := range c.order {
			if a != b {
				c.tell(c.nodes[a], memberJoined, b)
			}
		}
	}
	return c, nil
}

func (c *SimCluster) newID() dstate.NodeID {
	c.next++
	return dstate.NodeID(fmt.Sprintf("n%d", c.next))
}

// ticks converts a duration to ticks, rounding up; 0 stays 0.
func (c *SimCluster) ticks(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + c.tick - 1) / c.tick)
}

// start creates a node's engines as a new incarnation, larger than any it
// had, and marks it up. It does not join it.
func (c *SimCluster) start(n *simNode, opts SimRestart) error {
	if opts.Gauges != nil {
		opts.States = append([]SimStateStart{{state: "gauges", def: *opts.Gauges}}, opts.States...)
	}
	if opts.Counter != nil {
		opts.States = append([]SimStateStart{{state: "counter", def: *opts.Counter}}, opts.States...)
	}
	for _, set := range opts.States {
		if c.specIndex(set.state) < 0 {
			return fmt.Errorf("%w: %q", ErrNoSuchState, set.state)
		}
	}
	if n.lastInc == nil {
		n.lastInc = make(map[string]uint64)
	}
	if n.store == nil {
		n.store = &simEnvelopes{m: make(map[string]dstate.StoredEnvelope)}
	}
	states := make([]simState, len(c.specs))
	for i, sp := range c.specs {
		var prev simState
		if i < len(n.states) {
			prev = n.states[i]
		}
		st, err := sp.start(c, n, prev, &opts)
		if err != nil {
			return err
		}
		states[i] = st
	}
	for _, old := range n.states {
		old.stop()
	}
	n.states = states
	n.agg = dstate.NewChangeFeedAggregator(n.id)
	if c.digestTicks > 0 {
		n.digestAt = int64(c.net.rng.IntN(int(c.digestTicks)))
	}
	n.status = SimUp
	n.epoch++
	n.born = c.net.tick
	c.persisted(n)
	return nil
}

// persisted saves a node's own states as its persisted envelopes and
// records their values in the history.
func (c *SimCluster) persisted(n *simNode) {
	for _, st := range n.states {
		st.save(n.store, n.id)
		c.record(st.name(), n.id, st)
	}
}

// record notes the owner's own value at its generation; a generation seen
// before with another value is an error of the run (see HistoryError).
func (c *SimCluster) record(state string, owner dstate.NodeID, st simState) {
	info, _ := st.view(owner)
	enc, _ := st.encoded(owner)
	k := histKey{state, owner, info.gen}
	if prev, ok := c.history[k]; ok {
		if prev != string(enc) && c.histErr == nil {
			c.histErr = fmt.Errorf("%w: at tick %d %s published %s@%s = %s, which it had published with another value",
				ErrWrongValue, c.net.tick, owner, state, info.gen, st.describe(owner))
		}
		return
	}
	c.history[k] = string(enc)
}

// dropsUnreadable reports whether observer's engine of state drops the
// views of owner it cannot read (DropAndWait) and cannot read the wire
// version owner writes now.
func (c *SimCluster) dropsUnreadable(state string, observer, owner dstate.NodeID) bool {
	o, w := c.nodes[observer], c.nodes[owner]
	if o == nil || w == nil {
		return false
	}
	i := c.specIndex(state)
	if i < 0 || i >= len(o.states) || i >= len(w.states) {
		return false
	}
	return c.specs[i].config().VersionMismatchPolicy == dstate.DropAndWait && !o.states[i].reads(w.states[i].wireVersion())
}

// specIndex returns the index of the named state in c.specs, or -1.
func (c *SimCluster) specIndex(state string) int {
	for i, sp := range c.specs {
		if sp.name() == state {
			return i
		}
	}
	return -1
}

// wireVersions formats the wire versions of n's definitions ("1/2").
func (n *simNode) wireVersions() string {
	var b strings.Builder
	for i, st := range n.states {
		if i > 0 {
			b.WriteByte('/')
		}
		fmt.Fprintf(&b, "%d", st.wireVersion())
	}
	return b.String()
}

// HistoryError returns the first generation an owner published with two
// different values (wrapping ErrWrongValue), or nil.
func (c *SimCluster) HistoryError() error { return c.histErr }

// ownValue returns the encoded value the owner published at gen.
func (c *SimCluster) ownValue(state string, owner dstate.NodeID, gen dstate.Generation) (string, bool) {
	v, ok := c.history[histKey{state, owner, gen}]
	return v, ok
}

// restoreOrReincarnate starts e from its persisted envelope as a host
// does: Restore when the envelope is readable, else a new incarnation
// with the empty value above the stored one.
func restoreOrReincarnate[S, V any](e *dstate.Engine[S, V], p dstate.StatePersistence[S], storageVersion uint32, empty S, atLeast uint64) {
	obj, err := p.Load(context.Background())
	if err == nil && obj != nil {
		e.Restore(*obj, storageVersion)
		return
	}
	var pe *dstate.PersistError
	if errors.As(err, &pe) {
		atLeast = max(atLeast, pe.Stored.Incarnation+1)
	}
	e.Reincarnate(empty, atLeast)
}

// simEnvelopes is a node's persisted envelopes, in memory.
type simEnvelopes struct {
	m map[string]dstate.StoredEnvelope
}

func (s *simEnvelopes) SaveEnvelope(_ context.Context, env dstate.StoredEnvelope) error {
	env.Data = slices.Clone(env.Data)
	s.m[env.State] = env
	return nil
}

func (s *simEnvelopes) LoadEnvelope(_ context.Context, state string, _ dstate.NodeID) (*dstate.StoredEnvelope, error) {
	env, ok := s.m[state]
	if !ok {
		return nil, nil
	}
	env.Data = slices.Clone(env.Data)
	return &env, nil
}

// newSchedule draws the phase of a periodic sync timer.
func (c *SimCluster) newSchedule(cfg dstate.StateConfig) simSchedule {
	p := c.ticks(cfg.SyncStrategy.PeriodicFullSync)
	if p <= 0 {
		return simSchedule{}
	}
	return simSchedule{period: p, phase: int64(c.net.rng.IntN(int(p)))}
}

// tell tells the running node n that subject joined, failed or left: at
// once, or with MembershipDelay after a delay of its own (never before an
// earlier event of the same pair).
func (c *SimCluster) tell(n *simNode, kind memberKind, subject dstate.NodeID) {
	if c.memberTicks == 0 {
		c.apply(n, kind, subject)
		return
	}
	pair := [2]dstate.NodeID{n.id, subject}
	due := max(c.net.tick+int64(c.net.rng.IntN(int(c.memberTicks)+1)), c.lastDue[pair])
	c.lastDue[pair] = due
	c.mevents = append(c.mevents, memberEvent{due: due, target: n.id, subject: subject, epoch: n.epoch, kind: kind})
}

// apply delivers one membership event to n's engines.
func (c *SimCluster) apply(n *simNode, kind memberKind, subject dstate.NodeID) {
	c.memberSeq++
	if c.memberTicks > 0 {
		c.net.event("member %s: %s %s", n.id, subject, kind)
	}
	for _, st := range n.states {
		switch kind {
		case memberJoined:
			c.perform(n, st.joined(subject))
		case memberFailed:
			st.failed(subject)
		case memberLeft:
			st.left(subject)
		}
	}
	if kind == memberLeft {
		c.leftTold[[2]dstate.NodeID{n.id, subject}] = c.memberSeq
	}
}

// deliverMembership delivers the membership events due, in (due, order of
// telling); an event to a node that stopped or restarted since is lost.
func (c *SimCluster) deliverMembership() {
	if len(c.mevents) == 0 {
		return
	}
	now := c.net.tick
	var due []memberEvent
	keep := c.mevents[:0]
	for _, ev := range c.mevents {
		if ev.due <= now {
			due = append(due, ev)
		} else {
			keep = append(keep, ev)
		}
	}
	c.mevents = keep
	slices.SortStableFunc(due, func(a, b memberEvent) int { return cmp.Compare(a.due, b.due) })
	for _, ev := range due {
		if n := c.nodes[ev.target]; n != nil && n.status == SimUp && n.epoch == ev.epoch {
			c.apply(n, ev.kind, ev.subject)
		}
	}
}

// generations formats a node's own generations ("counter=v1:0 gauges=v1:0").
func (c *SimCluster) generations(n *simNode) string {
	var b strings.Builder
	for i, st := range n.states {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", st.name(), st.generation())
	}
	return b.String()
}

// perform executes the actions an engine of n returned.
func (c *SimCluster) perform(n *simNode, acts []dstate.Action) {
	dstate.Dispatch(acts, (*simHost)(n))
}

// simHost is a simulated node as the dstate.ActionHandler of its engines:
// frames go on the simulated network, delayed broadcasts become timers of
// the network, notices go to the node's change-feed aggregator.
type simHost simNode

func (h *simHost) Broadcast(frame []byte) { h.c.broadcast(h.id, frame, checksum(frame)) }

func (h *simHost) Send(to dstate.NodeID, frame []byte) {
	h.c.send(h.id, to, frame, checksum(frame))
}

func (h *simHost) BroadcastAfter(delay time.Duration, frame []byte) {
	h.c.net.schedule(h.id, max(h.c.ticks(delay), 1), frame, checksum(frame))
}

func (h *simHost) Notify(notice dstate.ChangeNotification) { h.agg.Notify(notice) }

// NoticeRejected: the engine counts it in its metrics; the simulation
// does nothing more.
func (h *simHost) NoticeRejected(dstate.NodeID, dstate.ChangeNotification) {}

// members returns, sorted, the nodes that are up or down (not left).
func (c *SimCluster) members() []dstate.NodeID {
	out := make([]dstate.NodeID, 0, len(c.order))
	for _, id := range c.order {
		if c.nodes[id].status != SimLeft {
			out = append(out, id)
		}
	}
	return out
}

func (c *SimCluster) broadcast(from dstate.NodeID, data []byte, sum uint32) {
	for _, id := range c.order {
		if id != from && c.nodes[id].status != SimLeft {
			c.send(from, id, data, sum)
		}
	}
}

func (c *SimCluster) send(from, to dstate.NodeID, data []byte, sum uint32) {
	if n := c.nodes[to]; n == nil || n.status != SimUp {
		c.net.stats.Lost++
		c.net.note("%s-x>%s lost (target not up)", from, to)
		return
	}
	c.net.transmit(from, to, data, sum)
}

// deliver hands one due message to its target's engines.
func (c *SimCluster) deliver(f *flight) {
	m, ok := c.accept(f)
	if !ok {
		return
	}
	n := c.nodes[f.to]
	for _, st := range n.states {
		c.perform(n, st.handle(&m))
	}
}

// deliverRuns delivers due messages as deliver does, but hands the ones
// of each link (from one node to another) to the target's engines at once,
// in the order they were due on the link (see SimConfig.DeltaRuns). Links
// go in the order of their first due message: like a host's connections,
// they are independent of each other.
func (c *SimCluster) deliverRuns(due []flight) {
	var links []link
	byLink := map[link][]*flight{}
	for i := range due {
		l := link{due[i].from, due[i].to}
		if _, ok := byLink[l]; !ok {
			links = append(links, l)
		}
		byLink[l] = append(byLink[l], &due[i])
	}
	for _, l := range links {
		var run []dstate.WireMessage
		for _, f := range byLink[l] {
			if m, ok := c.accept(f); ok {
				run = append(run, m)
			}
		}
		if len(run) > 1 {
			c.net.stats.InRuns += uint64(len(run))
		}
		if len(run) > 0 {
			n := c.nodes[l.to]
			for _, st := range n.states {
				c.perform(n, st.handleRun(slices.Clone(run)))
			}
		}
	}
}

// accept decides the fate of one due message: lost (its target is not
// up), blocked, undecodable or corrupt, else delivered and decoded.
func (c *SimCluster) accept(f *flight) (dstate.WireMessage, bool) {
	n := c.nodes[f.to]
	if n == nil || n.status != SimUp {
		c.net.stats.Lost++
		c.net.note("%s-x>%s lost (target not up)", f.from, f.to)
		return dstate.WireMessage{}, false
	}
	if !f.injected && c.net.isBlocked(f.from, f.to) {
		c.net.stats.Blocked++
		c.net.note("%s-x>%s blocked when due", f.from, f.to)
		return dstate.WireMessage{}, false
	}
	m, err := dstate.DecodeWire(f.data)
	if err != nil {
		c.net.stats.DecodeErrors++
		c.net.note("%s-x>%s undecodable: %v", f.from, f.to, err)
		return dstate.WireMessage{}, false
	}
	if f.checked && checksum(f.data) != f.sum {
		c.net.stats.IntegrityRejected++
		c.net.note("%s-x>%s checksum mismatch", f.from, f.to)
		return dstate.WireMessage{}, false
	}
	c.net.stats.Delivered++
	c.net.delivered(f, &m)
	return m, true
}

// Step advances the simulation by one tick: the clock moves by Tick, the
// messages due are delivered in (due, send order), due delayed broadcasts
// go out, then every running node fires its due periodic syncs and flushes
// its change feed every batch interval.
func (c *SimCluster) Step() {
	c.net.tick++
	c.clock.Advance(c.tick)
	c.deliverMembership()
	due := c.net.takeDue()
	if c.cfg.DeltaRuns {
		c.deliverRuns(due)
	} else {
		for i := range due {
			c.deliver(&due[i])
		}
	}
	for _, t := range c.net.takeTimers() {
		if n := c.nodes[t.node]; n != nil && n.status == SimUp {
			c.broadcast(t.node, t.data, t.sum)
		}
	}
	now := c.net.tick
	for _, id := range c.order {
		n := c.nodes[id]
		if n.status != SimUp {
			continue
		}
		age := now - n.born
		for _, st := range n.states {
			s := st.schedule()
			if s.period > 0 && age > 0 && (age+s.phase)%s.period == 0 {
				c.perform(n, st.periodic())
			}
		}
		if c.digestTicks > 0 && age > 0 && (age+n.digestAt)%c.digestTicks == 0 {
			c.sendDigest(n, c.members())
		}
		if c.batchTicks > 0 && age > 0 && age%c.batchTicks == 0 && n.agg.Len() > 0 {
			if msg, ok := n.agg.Flush(c.clock.UnixMilli()); ok {
				data := dstate.EncodeWire(&msg)
				c.broadcast(id, data, checksum(data))
			}
		}
	}
}

// sendDigest sends every node of to but n one digest of n's states.
func (c *SimCluster) sendDigest(n *simNode, to []dstate.NodeID) {
	entries := make([]dstate.ChangeNotification, 0, len(n.states))
	for _, st := range n.states {
		entries = append(entries, st.digestEntry())
	}
	msg := dstate.NewDigest(n.id, c.clock.UnixMilli(), entries)
	data := dstate.EncodeWire(&msg)
	sum := checksum(data)
	for _, id := range to {
		if id != n.id {
			c.send(n.id, id, data, sum)
		}
	}
}

// ResetLink breaks the connection from one node to another and makes a new
// one, as a transport does after a network error: the messages in flight
// on the link are lost (counted as Purged) and, with digests on, the
// sender sends the target a digest over the new link at once.
func (c *SimCluster) ResetLink(from, to dstate.NodeID) error {
	if _, err := c.node(to); err != nil {
		return err
	}
	n, err := c.node(from)
	if err != nil {
		return err
	}
	c.net.dropLink(from, to)
	c.net.event("reset %s->%s", from, to)
	if c.digestTicks > 0 && n.status == SimUp && c.Status(to) != SimLeft {
		c.sendDigest(n, []dstate.NodeID{to})
	}
	return nil
}

// LoseInFlight loses every message in flight (counted as Purged): the
// lost tail of a burst of writes, when nothing is written afterwards.
// Delayed broadcasts not yet sent are kept.
func (c *SimCluster) LoseInFlight() {
	c.net.stats.Purged += uint64(len(c.net.flights))
	clear(c.net.flights)
	c.net.flights = c.net.flights[:0]
	c.net.event("lose in-flight")
}

// Run performs n steps.
func (c *SimCluster) Run(n int) {
	for range n {
		c.Step()
	}
}

// Settle steps until the cluster has converged, at most maxTicks times. It
// returns nil once converged, else an error wrapping ErrNotConverged that
// describes the differences left. It never runs more than maxTicks ticks.
func (c *SimCluster) Settle(maxTicks int) error {
	start := c.net.tick
	for range maxTicks {
		if c.Converged() {
			return nil
		}
		c.Step()
	}
	if err := c.CheckConverged(); err != nil {
		return fmt.Errorf("after %d ticks (seed %d): %w", c.net.tick-start, c.cfg.Seed, err)
	}
	return nil
}

// Converged reports whether every running node's view of every other
// running node equals that node's own view, in generation and value, for
// every simulated state.
// No membership event may still be on its way.
func (c *SimCluster) Converged() bool { return len(c.mevents) == 0 && c.divergence(1) == nil }

// CheckConverged returns nil when the cluster has converged, else an error
// wrapping ErrNotConverged that lists the first differences.
func (c *SimCluster) CheckConverged() error {
	const show = 6
	diffs := c.divergence(-1)
	if len(c.mevents) > 0 {
		diffs = append(diffs, fmt.Sprintf("%d membership events not delivered", len(c.mevents)))
	}
	total := len(diffs)
	if total == 0 {
		return nil
	}
	more := ""
	if len(diffs) > show {
		more = fmt.Sprintf("; and %d more", len(diffs)-show)
		diffs = diffs[:show]
	}
	return fmt.Errorf("%w at tick %d: %d differences: %s%s", ErrNotConverged, c.net.tick, total, strings.Join(diffs, "; "), more)
}

// divergence lists up to limit (all when negative) differences.
func (c *SimCluster) divergence(limit int) []string {
	var diffs []string
	live := c.Live()
	for _, own := range live {
		owner := c.nodes[own]
		for si, ost := range owner.states {
			want, _ := ost.view(own)
			wantVal, _ := ost.encoded(own)
			for _, obs := range live {
				if obs == own {
					continue
				}
				st := c.nodes[obs].states[si]
				got, ok := st.view(own)
				switch {
				case !ok:
					diffs = append(diffs, fmt.Sprintf("%s has no %s view of %s (at %s)", obs, ost.name(), own, want.gen))
				case got.gen != want.gen:
					diffs = append(diffs, fmt.Sprintf("%s sees %s@%s at %s, owner at %s", obs, ost.name(), own, got.gen, want.gen))
				default:
					if v, _ := st.encoded(own); string(v) != string(wantVal) {
						diffs = append(diffs, fmt.Sprintf("%s sees %s@%s %s = %s, owner has %s", obs, ost.name(), own,
							got.gen, st.describe(own), ost.describe(own)))
					}
				}
				if limit >= 0 && len(diffs) >= limit {
					return diffs
				}
			}
		}
	}
	return diffs
}

// node returns a node that must exist.
func (c *SimCluster) node(id dstate.NodeID) (*simNode, error) {
	n := c.nodes[id]
	if n == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownNode, id)
	}
	return n, nil
}

// upNode returns a node that must be running.
func (c *SimCluster) upNode(id dstate.NodeID) (*simNode, error) {
	n, err := c.node(id)
	if err != nil {
		return nil, err
	}
	if n.status != SimUp {
		return nil, fmt.Errorf("%w: %s is %s", ErrNodeState, id, n.status)
	}
	return n, nil
}

// Query runs a query on the node's engine of the named state (which, with
// PullOnQuery, requests snapshots from the stale peers) and performs its
// actions. The requests travel the network like any message.
func (c *SimCluster) Query(id dstate.NodeID, state string, maxStaleness time.Duration) (dstate.QueryResult, error) {
	n, err := c.upNode(id)
	if err != nil {
		return dstate.QueryResult{}, err
	}
	for _, st := range n.states {
		if st.name() == state {
			res := st.query(maxStaleness)
			c.net.event("query %s %s stale=%v", id, state, res.Stale)
			c.perform(n, res.Actions)
			res.Actions = slices.Clone(res.Actions)
			return res, nil
		}
	}
	return dstate.QueryResult{}, fmt.Errorf("%w: %s", ErrNoSuchState, state)
}

// Crash stops a running node without a goodbye: messages to it are lost
// from now on, its delayed broadcasts are cancelled, and every running
// member is told it failed (they keep its views, which go stale). The
// messages it already sent stay in flight.
func (c *SimCluster) Crash(id dstate.NodeID) error {
	n, err := c.upNode(id)
	if err != nil {
		return err
	}
	c.crash(n)
	return nil
}

func (c *SimCluster) crash(n *simNode) {
	n.status = SimDown
	n.agg = nil
	for _, st := range n.states {
		st.stop()
	}
	c.net.purge(n.id, false)
	c.net.event("crash %s", n.id)
	for _, id := range c.order {
		if p := c.nodes[id]; p.status == SimUp {
			c.tell(p, memberFailed, n.id)
		}
	}
}

// Leave makes a running or crashed node leave gracefully: every running
// member drops its views and ignores its late messages until it joins
// again (Restart). Messages it sent stay in flight. It removes the node
// from the cluster until then.
func (c *SimCluster) Leave(id dstate.NodeID) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	if n.status == SimLeft {
		return fmt.Errorf("%w: %s already left", ErrNodeState, id)
	}
	n.status = SimLeft
	n.agg = nil
	c.net.purge(id, false)
	c.net.event("leave %s", id)
	for _, pid := range c.order {
		if p := c.nodes[pid]; p.status == SimUp {
			c.tell(p, memberLeft, id)
		}
	}
	return nil
}

// Restart starts a node again as a new incarnation with empty values: a
// crashed node restarts, a departed one joins again, a running one crashes
// first. See RestartWith.
func (c *SimCluster) Restart(id dstate.NodeID) error { return c.RestartWith(id, SimRestart{}) }

// RestartWith is Restart with options. The new engines take an incarnation
// larger than any the node had; the node and every running member exchange
// snapshots as on a join.
func (c *SimCluster) RestartWith(id dstate.NodeID, opts SimRestart) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	if n.status == SimUp {
		c.crash(n)
	}
	if err := c.start(n, opts); err != nil {
		return err
	}
	c.net.event("restart %s %s wire=%s", id, c.generations(n), n.wireVersions())
	c.join(n)
	return nil
}

// AddNode adds a new node, named after the highest so far, and joins it.
func (c *SimCluster) AddNode() (dstate.NodeID, error) { return c.AddNodeWith(SimRestart{}) }

// AddNodeWith is AddNode with the definitions or start values of
// opts.States (and of its Counter and Gauges); KeepValue and Restore do not
// apply to a new node.
func (c *SimCluster) AddNodeWith(opts SimRestart) (dstate.NodeID, error) {
	id := c.newID()
	n := &simNode{c: c, id: id}
	opts.KeepValue, opts.Restore = false, false
	if err := c.start(n, opts); err != nil {
		c.next--
		return "", err
	}
	c.nodes[id] = n
	c.order = append(c.order, id)
	slices.Sort(c.order)
	c.net.event("add %s %s", id, c.generations(n))
	c.join(n)
	return id, nil
}

// join has n and every other running member exchange join events.
func (c *SimCluster) join(n *simNode) {
	for _, pid := range c.order {
		p := c.nodes[pid]
		if pid == n.id || p.status != SimUp {
			continue
		}
		c.tell(p, memberJoined, n.id)
		c.tell(n, memberJoined, pid)
	}
}

// Partition cuts every link between nodes of different groups, in both
// directions, on top of the cuts already in place. Nodes in no group keep
// their links. Messages already in flight across a cut are lost when due.
func (c *SimCluster) Partition(groups ...[]dstate.NodeID) {
	for i, a := range groups {
		for j, b := range groups {
			if i != j {
				c.net.block(a, b)
			}
		}
	}
	c.net.event("partition %v", groups)
}

// BlockOneWay cuts the links from every node of from to every node of to,
// in that direction only.
func (c *SimCluster) BlockOneWay(from, to []dstate.NodeID) {
	c.net.block(from, to)
	c.net.event("block %v -> %v", from, to)
}

// Heal removes every cut.
func (c *SimCluster) Heal() {
	clear(c.net.blocked)
	c.net.event("heal")
}

// Blocked reports whether the link from a to b is cut.
func (c *SimCluster) Blocked(a, b dstate.NodeID) bool { return c.net.isBlocked(a, b) }

// SetFaults replaces the network faults from now on.
func (c *SimCluster) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	c.net.faults = f
	c.net.event("faults %s", f)
	return nil
}

// SetInterceptor replaces the network's interceptor from now on (nil
// removes it); see SimConfig.Intercept.
func (c *SimCluster) SetInterceptor(fn SimInterceptor) {
	c.net.intercept = fn
	c.net.event("interceptor %t", fn != nil)
}

// Faults returns the current network faults.
func (c *SimCluster) Faults() Faults { return c.net.faults }

// Inject puts msg on the wire from one node to another, due next tick,
// bypassing faults and partitions (to forge late, stale or foreign
// messages). The target must exist.
func (c *SimCluster) Inject(from, to dstate.NodeID, msg *dstate.WireMessage) error {
	if _, err := c.node(to); err != nil {
		return err
	}
	c.net.event("inject %s->%s %s", from, to, msg.String())
	c.net.inject(from, to, dstate.EncodeWire(msg))
	return nil
}

// Tick returns the number of steps taken.
func (c *SimCluster) Tick() int64 { return c.net.tick }

// Clock returns the cluster's clock (shared by every engine). Advancing it
// by hand skews time without delivering anything.
func (c *SimCluster) Clock() *TestClock { return c.clock }

// Seed returns the seed of the network.
func (c *SimCluster) Seed() uint64 { return c.cfg.Seed }

// States returns the names of the simulated states, sorted.
func (c *SimCluster) States() []string {
	out := make([]string, len(c.specs))
	for i, sp := range c.specs {
		out[i] = sp.name()
	}
	return out
}

// Nodes returns every node ever added, whatever its status, sorted.
func (c *SimCluster) Nodes() []dstate.NodeID { return slices.Clone(c.order) }

// Live returns the running nodes, sorted.
func (c *SimCluster) Live() []dstate.NodeID {
	out := make([]dstate.NodeID, 0, len(c.order))
	for _, id := range c.order {
		if c.nodes[id].status == SimUp {
			out = append(out, id)
		}
	}
	return out
}

// Members returns the nodes that have not left (running or crashed), sorted.
func (c *SimCluster) Members() []dstate.NodeID { return c.members() }

// Status returns a node's status, or 0 for an unknown node.
func (c *SimCluster) Status(id dstate.NodeID) SimNodeStatus {
	if n := c.nodes[id]; n != nil {
		return n.status
	}
	return 0
}

// Epoch returns how many times the node was started (1 for a node that
// never restarted, 0 for an unknown one). A restarted node's engines, and
// so its views, are new.
func (c *SimCluster) Epoch(id dstate.NodeID) int {
	if n := c.nodes[id]; n != nil {
		return n.epoch
	}
	return 0
}

// Metrics returns the metrics of the node's engine of the named state.
func (c *SimCluster) Metrics(id dstate.NodeID, state string) (dstate.SyncMetrics, error) {
	n, err := c.upNode(id)
	if err != nil {
		return dstate.SyncMetrics{}, err
	}
	for _, st := range n.states {
		if st.name() == state {
			return st.metrics(), nil
		}
	}
	return dstate.SyncMetrics{}, fmt.Errorf("%w: %s", ErrNoSuchState, state)
}

// View returns the observer's view of the owner's named state.
func (c *SimCluster) View(observer, owner dstate.NodeID, state string) (SimView, bool) {
	n := c.nodes[observer]
	if n == nil || n.status != SimUp {
		return SimView{}, false
	}
	for _, st := range n.states {
		if st.name() == state {
			v, ok := st.view(owner)
			if !ok {
				return SimView{}, false
			}
			return SimView{State: state, Observer: observer, Owner: owner, Generation: v.gen, Pending: v.pending, Value: st.describe(owner)}, true
		}
	}
	return SimView{}, false
}

// Views returns every view held by every running node, values formatted,
// sorted by state, observer and owner.
func (c *SimCluster) Views() []SimView {
	var out []SimView
	c.EachView(func(v SimView) {
		v.Value = c.describe(v)
		out = append(out, v)
	})
	slices.SortStableFunc(out, func(a, b SimView) int { return strings.Compare(a.State, b.State) })
	return out
}

func (c *SimCluster) describe(v SimView) string {
	for _, st := range c.nodes[v.Observer].states {
		if st.name() == v.State {
			return st.describe(v.Owner)
		}
	}
	return ""
}

// EachView calls fn with every view held by every running node, by
// observer, state and owner, sorted, without formatting values (Value is
// empty). It is the cheap way to check invariants after every step.
func (c *SimCluster) EachView(fn func(SimView)) {
	for _, obs := range c.order {
		n := c.nodes[obs]
		if n.status != SimUp {
			continue
		}
		for _, st := range n.states {
			for _, own := range st.owners() {
				v, _ := st.view(own)
				fn(SimView{State: st.name(), Observer: obs, Owner: own, Generation: v.gen, Pending: v.pending})
			}
		}
	}
}

// SimPending counts what is on its way in a [SimCluster].
type SimPending struct {
	Messages   int // on the wire
	Delayed    int // delayed broadcasts (ActionScheduleDelayed) not yet sent
	Notices    int // change notices the running nodes' feeds have not flushed yet
	Membership int // membership events not yet told (SimConfig.MembershipDelay)
}

// IsZero reports whether nothing is on its way.
func (p SimPending) IsZero() bool { return p == SimPending{} }

// String describes it, e.g. "3 messages, 0 delayed, 1 notices, 0 membership".
func (p SimPending) String() string {
	return fmt.Sprintf("%d messages, %d delayed, %d notices, %d membership", p.Messages, p.Delayed, p.Notices, p.Membership)
}

// Pending returns what is on its way now.
func (c *SimCluster) Pending() SimPending {
	p := SimPending{Messages: len(c.net.flights), Delayed: len(c.net.timers), Membership: len(c.mevents)}
	for _, id := range c.order {
		if n := c.nodes[id]; n.status == SimUp && n.agg != nil {
			p.Notices += n.agg.Len()
		}
	}
	return p
}

// Idle reports whether nothing is on its way: no message on the wire, no
// delayed broadcast, no change notice waiting for a feed flush and no
// membership event untold. A converged cluster may not be idle (a delta
// still travelling repeats what a view holds), and an idle one may not
// have converged (every copy of a message was lost). The periodic syncs
// and digests still fire on later steps.
func (c *SimCluster) Idle() bool { return c.Pending().IsZero() }

// RunUntilIdle steps until the cluster is idle, at most maxTicks times,
// and returns nil once idle, else an error wrapping ErrNotIdle that says
// what is still pending. It does not step when the cluster is idle
// already.
func (c *SimCluster) RunUntilIdle(maxTicks int) error {
	start := c.net.tick
	for range maxTicks {
		if c.Idle() {
			return nil
		}
		c.Step()
	}
	if p := c.Pending(); !p.IsZero() {
		return fmt.Errorf("%w after %d ticks (seed %d): %s", ErrNotIdle, c.net.tick-start, c.cfg.Seed, p)
	}
	return nil
}

// InFlight returns the number of messages on the wire.
func (c *SimCluster) InFlight() int { return len(c.net.flights) }

// Stats returns what the network did so far.
func (c *SimCluster) Stats() SimStats { return c.net.stats }

// TraceHash returns the running hash of every cluster event and delivered
// message (tick, link and bytes): two runs with the same seed and calls
// have the same hash.
func (c *SimCluster) TraceHash() uint64 { return c.net.hash }

// Trace returns the kept trace lines (SimConfig.KeepTrace), one per event,
// delivery and fault outcome, each prefixed by its tick.
func (c *SimCluster) Trace() []string { return slices.Clone(c.net.trace) }
