package serfevents

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// eventChSize buffers serf's event channel; the drain goroutine empties it
// continuously, so it only absorbs bursts.
const eventChSize = 1024

// selfJoinWait bounds how long New waits to see the local node's own join.
const selfJoinWait = 5 * time.Second

// Membership is a dstate.ClusterEvents backed by a serf instance that it
// creates and owns. It is safe for concurrent use.
type Membership struct {
	cfg      Config
	id       dstate.NodeID
	log      *slog.Logger
	serf     *serf.Serf
	keyring  *memberlist.Keyring
	files    *fileGuard // keeps the snapshot and the key file private
	boot     string
	eventCh  chan serf.Event
	stopCh   chan struct{}
	selfSeen chan struct{}
	wg       sync.WaitGroup // drain, joiner and blocking calls
	subWG    sync.WaitGroup // subscriber goroutines

	mu       sync.Mutex // held while an event is dispatched
	closed   bool
	subs     map[dstate.SubscriptionID]*subscriber
	order    []*subscriber // subs by ID
	nextSub  dstate.SubscriptionID
	members  map[dstate.NodeID]*seenMember
	selfDone bool

	tagsMu sync.Mutex
	tags   map[string]string // the local tags, without TagBoot

	// joinMu is held around each join round and by Leave, so that a leave
	// never races a join's broadcast (peers would take the leave for older
	// than the join and later see a failure instead).
	joinMu sync.Mutex

	shutdownOnce sync.Once
	shutdownErr  error

	eventsIn     atomic.Uint64
	dropped      atomic.Uint64
	joined       atomic.Bool
	joinAttempts atomic.Int64
	joinErrMu    sync.Mutex
	joinErr      string
}

var _ dstate.ClusterEvents = (*Membership)(nil)

// New validates cfg, starts serf on cfg.BindAddr and returns once the local
// node is a member of its own (so far one-node) cluster. When cfg.Seeds is
// set it joins them in the background; when cfg.SnapshotPath names the
// snapshot of an earlier run, serf also rejoins the members it recorded.
func New(cfg Config) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	logger := c.Logger
	if logger == nil {
		logger = discardLogger()
	}
	logger = logger.With("node", string(c.NodeID))

	keys := c.Keys
	if c.KeyFile != "" {
		var err error
		if keys, err = LoadKeyFile(c.KeyFile); err != nil {
			return nil, err
		}
	}
	var kr *memberlist.Keyring
	if len(keys) > 0 {
		var err error
		if kr, err = newKeyring(keys); err != nil {
			return nil, err
		}
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("serfevents: boot id: %w", err)
	}

	files, err := newFileGuard(logger, c.SnapshotPath, c.KeyFile)
	if err != nil {
		return nil, err
	}

	m := &Membership{
		cfg: c, id: c.NodeID, log: logger, keyring: kr, files: files, boot: hex.EncodeToString(b[:]),
		eventCh: make(chan serf.Event, eventChSize), stopCh: make(chan struct{}), selfSeen: make(chan struct{}),
		subs: map[dstate.SubscriptionID]*subscriber{}, members: map[dstate.NodeID]*seenMember{},
		tags: c.Tags,
	}
	sc, err := m.serfConfig()
	if err != nil {
		return nil, err
	}
	s, err := serf.Create(sc)
	if err != nil {
		return nil, fmt.Errorf("serfevents: start serf on %s: %w", c.BindAddr, err)
	}
	m.serf = s
	m.wg.Add(1)
	go m.drain()

	t := time.NewTimer(selfJoinWait)
	select {
	case <-m.selfSeen:
	case <-t.C:
		m.log.Warn("local join event not seen in time; continuing")
	}
	t.Stop()
	local := m.LocalNode()
	m.log.Info("serf started", "addr", local.Addr, "encrypted", kr != nil, "snapshot", c.SnapshotPath)
	if len(c.Seeds) > 0 {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			_, err := m.join(context.Background(), c.Seeds, c.JoinMaxAttempts)
			if err != nil && !errors.Is(err, ErrClosed) && m.serf.State() == serf.SerfAlive {
				m.log.Error("giving up joining the seeds", "seeds", c.Seeds, "err", err)
			}
		}()
	}
	return m, nil
}

// serfConfig builds a fresh serf and memberlist configuration from m.cfg.
func (m *Membership) serfConfig() (*serf.Config, error) {
	c, t := m.cfg, m.cfg.Timing

	mc := memberlist.DefaultLANConfig()
	host, port, err := splitHostPort(c.BindAddr, true)
	if err != nil {
		return nil, &ConfigError{Field: "BindAddr", Reason: err.Error()}
	}
	if host == "" {
		host = "0.0.0.0"
	}
	mc.BindAddr, mc.BindPort, mc.AdvertisePort = host, port, port
	if c.AdvertiseAddr != "" {
		h, p, err := splitHostPort(c.AdvertiseAddr, false)
		if err != nil {
			return nil, &ConfigError{Field: "AdvertiseAddr", Reason: err.Error()}
		}
		mc.AdvertiseAddr, mc.AdvertisePort = h, p
	}
	mc.ProbeInterval, mc.ProbeTimeout = t.ProbeInterval, t.ProbeTimeout
	mc.SuspicionMult, mc.SuspicionMaxTimeoutMult = t.SuspicionMult, t.SuspicionMaxTimeoutMult
	mc.GossipInterval, mc.GossipNodes = t.GossipInterval, t.GossipNodes
	mc.PushPullInterval, mc.TCPTimeout = t.PushPullInterval, t.TCPTimeout
	mc.GossipToTheDeadTime, mc.RetransmitMult = t.GossipToTheDeadTime, t.RetransmitMult
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	mc.Keyring = m.keyring
	mc.Label = c.ClusterName
	mc.Logger, mc.LogOutput = stdLogger(m.log, "memberlist"), nil

	return &serf.Config{
		NodeName:                     string(c.NodeID),
		Tags:                         withBoot(c.Tags, m.boot),
		EventCh:                      m.eventCh,
		ProtocolVersion:              4,
		BroadcastTimeout:             t.BroadcastTimeout,
		LeavePropagateDelay:          t.LeavePropagateDelay,
		EventBuffer:                  512,
		QueryBuffer:                  512,
		ReapInterval:                 c.ReapInterval,
		RecentIntentTimeout:          5 * time.Minute,
		ReconnectInterval:            c.ReconnectInterval,
		ReconnectTimeout:             c.ReconnectTimeout,
		TombstoneTimeout:             c.TombstoneTimeout,
		FlapTimeout:                  60 * time.Second,
		QueueCheckInterval:           30 * time.Second,
		QueueDepthWarning:            128,
		MaxQueueDepth:                4096,
		QueryTimeoutMult:             t.QueryTimeoutMult,
		QueryResponseSizeLimit:       1024,
		QuerySizeLimit:               1024,
		UserEventSizeLimit:           512,
		EnableNameConflictResolution: true,
		MemberlistConfig:             mc,
		Logger:                       stdLogger(m.log, "serf"),
		SnapshotPath:                 c.SnapshotPath,
		RejoinAfterLeave:             c.RejoinAfterLeave,
		KeyringFile:                  c.KeyFile,
	}, nil
}

// enter registers a blocking call that Shutdown waits for; it fails once
// the Membership is shut down.
func (m *Membership) enter() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.wg.Add(1)
	return nil
}

// Join joins the cluster through seeds ("host:port" gossip addresses),
// retrying every Config.JoinRetryInterval until at least one answers or ctx
// ends. A host may be a name: each round resolves it again (with
// Config.Resolver) and tries every address it resolves to. It returns how many seeds answered. On failure the error is a
// *JoinError; it matches ErrEncryption when the seeds rejected our gossip
// key (or we theirs).
func (m *Membership) Join(ctx context.Context, seeds []string) (int, error) {
	if len(seeds) == 0 {
		return 0, fmt.Errorf("%w: no seeds", ErrJoin)
	}
	return m.join(ctx, seeds, 0)
}

// join runs join rounds until one reaches a seed, maxAttempts rounds
// failed (0: no limit), ctx ends or the Membership shuts down.
func (m *Membership) join(ctx context.Context, seeds []string, maxAttempts int) (int, error) {
	var last error
	fail := func(attempts int, cause error) error {
		if last == nil {
			last = cause
		}
		return &JoinError{Seeds: slices.Clone(seeds), Attempts: attempts, Encryption: isEncryptionError(last), Err: last}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return 0, fail(attempt-1, err)
		}
		if err := m.enter(); err != nil {
			return 0, err
		}
		// Host names are resolved at every round: every address a name
		// resolves to is tried (resolve.go).
		addrs, rerr := m.resolveSeeds(ctx, seeds)
		m.joinMu.Lock()
		if m.serf.State() != serf.SerfAlive {
			m.joinMu.Unlock()
			m.wg.Done()
			return 0, fmt.Errorf("%w: this node left the cluster", ErrJoin)
		}
		m.joinAttempts.Add(1)
		var n int
		var err error
		if len(addrs) > 0 {
			n, err = m.serf.Join(addrs, true)
		}
		m.joinMu.Unlock()
		m.wg.Done()
		if n > 0 {
			m.joined.Store(true)
			m.setJoinErr("")
			m.log.Info("joined the cluster", "seeds", seeds, "addrs", addrs, "answered", n, "attempt", attempt)
			m.reannounce()
			return n, nil
		}
		if err == nil && len(addrs) > 0 {
			err = errors.New("no seed answered")
		}
		err = errors.Join(err, rerr)
		err = flatten(err)
		last = err
		m.setJoinErr(err.Error())
		if isEncryptionError(err) {
			m.log.Error("join failed: gossip encryption key mismatch", "seeds", seeds, "attempt", attempt, "err", err)
		} else {
			m.log.Warn("join failed; retrying", "seeds", seeds, "attempt", attempt, "err", err)
		}
		if maxAttempts > 0 && attempt >= maxAttempts {
			return 0, fail(attempt, nil)
		}
		timer.Reset(m.cfg.JoinRetryInterval)
		select {
		case <-timer.C:
		case <-ctx.Done():
			return 0, fail(attempt, ctx.Err())
		case <-m.stopCh:
			return 0, ErrClosed
		}
	}
}

// reannounceAfter are the delays after a join at which the node announces
// its join again (see reannounce).
var reannounceAfter = []time.Duration{2 * time.Second, 8 * time.Second}

// reannounce announces this node's join again, a few seconds after it
// joined, through members it now knows. A node that left gracefully and
// started again at once can otherwise stay "leaving" on some members: the
// leave intent of its previous run may reach them after its new join
// intent, with a Lamport time above it (its clock restarts from the last
// value its snapshot recorded), and serf keeps that status while the node
// runs. A join announced once the node has witnessed the cluster's clock
// carries a later time and makes it alive everywhere.
func (m *Membership) reannounce() {
	if err := m.enter(); err != nil {
		return
	}
	go func() {
		defer m.wg.Done()
		for _, d := range reannounceAfter {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-m.stopCh:
				t.Stop()
				return
			}
			var addrs []string
			for _, mem := range m.Members() {
				if mem.ID != m.id && mem.Status == StatusAlive && len(addrs) < 3 {
					addrs = append(addrs, mem.Addr)
				}
			}
			if len(addrs) == 0 {
				continue
			}
			m.joinMu.Lock()
			if m.serf.State() == serf.SerfAlive {
				_, _ = m.serf.Join(addrs, true)
			}
			m.joinMu.Unlock()
		}
	}()
}

// flatten turns memberlist's multi-line error lists into one line.
func flatten(err error) error {
	var errs []error
	var walk func(error)
	walk = func(e error) {
		switch w := e.(type) {
		case interface{ WrappedErrors() []error }:
			for _, x := range w.WrappedErrors() {
				walk(x)
			}
		case interface{ Unwrap() []error }:
			for _, x := range w.Unwrap() {
				walk(x)
			}
		default:
			if e != nil {
				errs = append(errs, e)
			}
		}
	}
	walk(err)
	switch len(errs) {
	case 0:
		return err
	case 1:
		return errs[0]
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return &flatError{msg: strings.Join(parts, "; "), errs: errs}
}

// flatError is a list of errors printed on one line.
type flatError struct {
	msg  string
	errs []error
}

func (e *flatError) Error() string   { return e.msg }
func (e *flatError) Unwrap() []error { return e.errs }

func (m *Membership) setJoinErr(s string) {
	m.joinErrMu.Lock()
	m.joinErr = s
	m.joinErrMu.Unlock()
}

// isEncryptionError reports whether a memberlist error shows that the two
// sides do not share a gossip key: memberlist's errors say "decrypt" or
// "encrypt" (for example "No installed keys could decrypt the message" or
// "Encryption is configured but remote state is not encrypted").
func isEncryptionError(err error) bool {
	if err == nil {
		return false
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "decrypt") || strings.Contains(s, "encrypt")
}

// MemberStatus is a member's state as serf sees it.
type MemberStatus uint8

// The member statuses.
const (
	StatusAlive MemberStatus = iota + 1
	StatusLeaving
	StatusLeft
	StatusFailed
)

// String names the status ("alive", "leaving", "left", "failed").
func (s MemberStatus) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusLeaving:
		return "leaving"
	case StatusLeft:
		return "left"
	case StatusFailed:
		return "failed"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

func statusOf(s serf.MemberStatus) MemberStatus {
	switch s {
	case serf.StatusAlive:
		return StatusAlive
	case serf.StatusLeaving:
		return StatusLeaving
	case serf.StatusLeft:
		return StatusLeft
	case serf.StatusFailed:
		return StatusFailed
	}
	return 0
}

// Member is one cluster member as serf knows it.
type Member struct {
	ID     dstate.NodeID
	Addr   string // gossip address, "ip:port"
	Status MemberStatus
	Tags   map[string]string // a copy; TagBoot included
	// Protocol is the gossip protocol versions the member speaks.
	Protocol Protocol
}

// Protocol is a member's gossip protocol versions: memberlist's (Min, Max,
// Cur) and serf's own, its delegate's (DelegateMin, DelegateMax,
// DelegateCur).
type Protocol struct {
	Min, Max, Cur                         uint8
	DelegateMin, DelegateMax, DelegateCur uint8
}

// String formats the member as "n1 127.0.0.1:7946 alive".
func (m Member) String() string { return fmt.Sprintf("%s %s %s", m.ID, m.Addr, m.Status) }

func memberOf(sm serf.Member) Member {
	return Member{
		ID:   dstate.NodeID(sm.Name),
		Addr: net.JoinHostPort(sm.Addr.String(), strconv.Itoa(int(sm.Port))),
		Protocol: Protocol{Min: sm.ProtocolMin, Max: sm.ProtocolMax, Cur: sm.ProtocolCur,
			DelegateMin: sm.DelegateMin, DelegateMax: sm.DelegateMax, DelegateCur: sm.DelegateCur},
		Status: statusOf(sm.Status),
		Tags:   maps.Clone(sm.Tags),
	}
}

// Members lists every member serf knows, this node included, sorted by
// ID: alive ones and departed ones not yet reaped.
func (m *Membership) Members() []Member {
	sms := m.serf.Members()
	out := make([]Member, len(sms))
	for i, sm := range sms {
		out[i] = memberOf(sm)
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out
}

// LocalNode returns this node as a member (its actual gossip address, also
// when Config.BindAddr had port 0).
func (m *Membership) LocalNode() Member { return memberOf(m.serf.LocalMember()) }

// ID returns this node's ID.
func (m *Membership) ID() dstate.NodeID { return m.id }

// Tags returns a copy of the local tags (without TagBoot).
func (m *Membership) Tags() map[string]string {
	m.tagsMu.Lock()
	defer m.tagsMu.Unlock()
	return maps.Clone(m.tags)
}

// SetTags replaces the local tags; peers see a NodeUpdated with the new
// tags. It fails when tags set TagBoot or do not fit in MaxTagsSize (a
// *TagsSizeError), and waits until the update is broadcast (bounded by
// Timing.BroadcastTimeout) or ctx ends.
func (m *Membership) SetTags(ctx context.Context, tags map[string]string) error {
	if _, ok := tags[TagBoot]; ok {
		return fmt.Errorf("serfevents: SetTags: the tag %q is reserved", TagBoot)
	}
	full := withBoot(tags, m.boot)
	if err := CheckTags(full); err != nil {
		return err
	}
	if err := m.enter(); err != nil {
		return err
	}
	own := maps.Clone(tags)
	done := make(chan error, 1)
	go func() {
		defer m.wg.Done()
		m.tagsMu.Lock()
		defer m.tagsMu.Unlock()
		err := m.serf.SetTags(full)
		if err == nil {
			m.tags = own
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("serfevents: set tags: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("serfevents: set tags: %w", ctx.Err())
	}
}

// Leave leaves the cluster gracefully: peers see NodeLeft. It waits for the
// leave to be broadcast and for Timing.LeavePropagateDelay, or until ctx
// ends. The node keeps gossiping until Shutdown.
func (m *Membership) Leave(ctx context.Context) error {
	if err := m.enter(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		defer m.wg.Done()
		m.joinMu.Lock()
		defer m.joinMu.Unlock()
		done <- m.serf.Leave()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("serfevents: leave: %w", err)
		}
		m.log.Info("left the cluster")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("serfevents: leave: %w", ctx.Err())
	}
}

// Shutdown stops serf at once, without leaving: peers see NodeFailed (this
// is how tests simulate a crash). It stops event delivery (a callback
// already running completes) and waits for the Membership's goroutines,
// so it must not be called from a subscriber callback. It is idempotent.
// Afterwards Subscribe, Join, Leave, SetTags and the keyring operations fail
// with ErrClosed; the read-only methods (Members, LocalNode, Stats...) still
// answer.
func (m *Membership) Shutdown() error {
	m.shutdownOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		subs := m.order
		m.subs, m.order = map[dstate.SubscriptionID]*subscriber{}, nil
		m.mu.Unlock()
		err := m.serf.Shutdown()
		close(m.stopCh)
		for _, s := range subs {
			s.close()
		}
		m.wg.Wait()
		m.subWG.Wait()
		m.files.check() // what serf wrote last, at rest
		if err != nil {
			m.shutdownErr = fmt.Errorf("serfevents: shutdown: %w", err)
		}
		m.log.Info("serf stopped")
	})
	return m.shutdownErr
}

// Close leaves the cluster gracefully (until ctx ends) and shuts down. It
// is idempotent.
func (m *Membership) Close(ctx context.Context) error {
	err := m.Leave(ctx)
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	return errors.Join(err, m.Shutdown())
}

// Stats are a Membership's counters.
type Stats struct {
	// Members counts the members serf knows by status.
	Members, Alive, Leaving, Left, Failed int
	// EventsReceived counts member events taken from serf (one per member).
	EventsReceived uint64
	// EventsDropped counts events dropped for all subscribers, past ones
	// included.
	EventsDropped uint64
	// Subscribers are the current subscriptions, by ID.
	Subscribers []SubscriberStats
	// Joined is true once a join reached a seed.
	Joined bool
	// JoinAttempts counts join rounds; LastJoinError is the last failed
	// round's error, cleared by a successful one.
	JoinAttempts  int64
	LastJoinError string
	// Encrypted is true when gossip is encrypted.
	Encrypted bool
	// HealthScore is memberlist's awareness score: 0 is healthy, higher
	// means this node is slow to answer probes.
	HealthScore int
}

// Stats returns the current counters.
func (m *Membership) Stats() Stats {
	st := Stats{
		EventsReceived: m.eventsIn.Load(), EventsDropped: m.dropped.Load(), Joined: m.joined.Load(),
		JoinAttempts: m.joinAttempts.Load(), Encrypted: m.keyring != nil,
		HealthScore: m.serf.Memberlist().GetHealthScore(),
	}
	m.joinErrMu.Lock()
	st.LastJoinError = m.joinErr
	m.joinErrMu.Unlock()
	for _, sm := range m.serf.Members() {
		st.Members++
		switch statusOf(sm.Status) {
		case StatusAlive:
			st.Alive++
		case StatusLeaving:
			st.Leaving++
		case StatusLeft:
			st.Left++
		case StatusFailed:
			st.Failed++
		}
	}
	m.mu.Lock()
	subs := slices.Clone(m.order)
	m.mu.Unlock()
	for _, s := range subs {
		st.Subscribers = append(st.Subscribers, s.stats())
	}
	return st
}
