package serfevents

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	metrics "github.com/hashicorp/go-metrics/compat"
	"github.com/hashicorp/serf/serf"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// seenMember is a member as the event stream has described it so far.
type seenMember struct {
	status MemberStatus
	tags   map[string]string
}

// kindOf maps serf's member event types; other events are not membership.
func kindOf(t serf.EventType) (dstate.ClusterEventKind, bool) {
	switch t {
	case serf.EventMemberJoin:
		return dstate.NodeJoined, true
	case serf.EventMemberLeave:
		return dstate.NodeLeft, true
	case serf.EventMemberFailed:
		return dstate.NodeFailed, true
	case serf.EventMemberUpdate:
		return dstate.NodeUpdated, true
	case serf.EventMemberReap:
		return dstate.NodeReaped, true
	}
	return 0, false
}

// drain empties serf's event channel until Shutdown. It never blocks on a
// subscriber, so serf (which sends events while holding its member lock)
// is never held up by a slow one.
func (m *Membership) drain() {
	defer m.wg.Done()
	var fileCheck <-chan time.Time
	if m.files.active() {
		t := time.NewTicker(fileCheckInterval)
		defer t.Stop()
		fileCheck = t.C
	}
	for {
		select {
		case e := <-m.eventCh:
			if me, ok := e.(serf.MemberEvent); ok {
				m.dispatch(me)
			}
		case <-fileCheck:
			m.files.check()
		case <-m.stopCh:
			return
		}
	}
}

// dispatch records a serf member event and queues it for every subscriber.
func (m *Membership) dispatch(me serf.MemberEvent) {
	kind, ok := kindOf(me.Type)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sm := range me.Members {
		m.eventsIn.Add(1)
		id := dstate.NodeID(sm.Name)
		tags := maps.Clone(sm.Tags)
		if tags == nil {
			tags = map[string]string{}
		}
		k := kind
		prev := m.members[id]
		switch k {
		case dstate.NodeJoined:
			m.members[id] = &seenMember{status: StatusAlive, tags: tags}
		case dstate.NodeUpdated:
			switch {
			case prev == nil || prev.status != StatusAlive:
				// Back from a state we saw as gone: a join for our subscribers.
				k = dstate.NodeJoined
			case prev.tags[TagBoot] != "" && tags[TagBoot] != "" && prev.tags[TagBoot] != tags[TagBoot]:
				// It restarted before anyone declared it failed.
				k = dstate.NodeJoined
				m.log.Info("member restarted", "peer", string(id))
			}
			m.members[id] = &seenMember{status: StatusAlive, tags: tags}
		case dstate.NodeLeft:
			m.members[id] = &seenMember{status: StatusLeft, tags: tags}
		case dstate.NodeFailed:
			m.members[id] = &seenMember{status: StatusFailed, tags: tags}
		case dstate.NodeReaped:
			delete(m.members, id)
		}
		if id == m.id && k == dstate.NodeJoined && !m.selfDone {
			m.selfDone = true
			close(m.selfSeen)
		}
		ev := dstate.ClusterEvent{Kind: k, Node: id, Tags: tags}
		if k == dstate.NodeUpdated {
			m.log.Debug("member event", "event", k.String(), "peer", string(id))
		} else {
			m.log.Info("member event", "event", k.String(), "peer", string(id), "transport", tags[TagTransport])
		}
		for _, s := range m.order {
			m.push(s, ev)
		}
	}
}

// push queues ev for s, or drops and reports it when s's queue is full.
// m.mu is held.
func (m *Membership) push(s *subscriber, ev dstate.ClusterEvent) {
	ok, first := s.push(ev)
	if ok {
		return
	}
	m.dropped.Add(1)
	metrics.IncrCounterWithLabels([]string{"dstate", "serfevents", "events_dropped"}, 1, []metrics.Label{
		{Name: "node", Value: string(m.id)}, {Name: "subscription", Value: strconv.FormatUint(uint64(s.id), 10)},
	})
	if first {
		m.log.Warn("subscriber is falling behind: dropping membership events until it catches up, then resyncing it",
			"subscription", uint64(s.id), "queue_size", s.limit, "event", ev.String())
	}
}

// snapshotEvents describes every known member as one event each, sorted by
// ID: alive ones as NodeJoined and, when all is set, departed ones as
// NodeLeft or NodeFailed. m.mu is held.
func (m *Membership) snapshotEvents(all bool) []dstate.ClusterEvent {
	var out []dstate.ClusterEvent
	for _, id := range slices.Sorted(maps.Keys(m.members)) {
		sm := m.members[id]
		var k dstate.ClusterEventKind
		switch sm.status {
		case StatusAlive, StatusLeaving:
			k = dstate.NodeJoined
		case StatusLeft:
			k = dstate.NodeLeft
		case StatusFailed:
			k = dstate.NodeFailed
		}
		if k == 0 || (!all && k != dstate.NodeJoined) {
			continue
		}
		out = append(out, dstate.ClusterEvent{Kind: k, Node: id, Tags: sm.tags})
	}
	return out
}

// Subscribe registers fn for membership events and returns its ID.
//
// fn first gets a NodeJoined for every member alive at the time (this node
// included), then every following event, in order, one call at a time, on
// a goroutine of its own. Events wait in a queue of Config.QueueSize; when
// fn falls that far behind, further events for it are dropped (counted in
// Stats and the "dstate.serfevents.events_dropped" metric, and logged),
// and once it has caught up it gets the current state of every known
// member (NodeJoined, NodeLeft or NodeFailed) so that it converges again.
// A member reaped while its events were being dropped is not reported.
// Other subscribers and serf itself are never delayed by a slow one.
//
// fn may call Subscribe and Unsubscribe; it must not call Shutdown or
// Close. Receivers must not modify an event's Tags.
func (m *Membership) Subscribe(fn func(dstate.ClusterEvent)) (dstate.SubscriptionID, error) {
	if fn == nil {
		return 0, errors.New("serfevents: Subscribe: nil callback")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	m.nextSub++
	s := newSubscriber(m.nextSub, fn, m.cfg.QueueSize)
	s.queue = m.snapshotEvents(false)
	m.subs[s.id] = s
	m.order = append(m.order, s)
	m.subWG.Add(1)
	go m.run(s)
	return s.id, nil
}

// Unsubscribe removes a subscription: its queued events are discarded and
// its callback is not called again (except a call already running). An
// unknown or already removed ID is not an error.
func (m *Membership) Unsubscribe(id dstate.SubscriptionID) error {
	m.mu.Lock()
	s := m.subs[id]
	if s != nil {
		delete(m.subs, id)
		m.order = slices.DeleteFunc(m.order, func(x *subscriber) bool { return x == s })
	}
	m.mu.Unlock()
	if s != nil {
		s.close()
	}
	return nil
}

// SubscriberStats are one subscription's counters.
type SubscriberStats struct {
	ID        dstate.SubscriptionID
	Queued    int    // events waiting
	Delivered uint64 // callbacks made
	Dropped   uint64 // events dropped because the queue was full
	Resyncs   uint64 // times it was resynced after dropping events
	Panics    uint64 // callbacks that panicked (recovered and logged)
}

// subscriber is one subscription: a bounded queue and the goroutine that
// empties it into fn.
type subscriber struct {
	id    dstate.SubscriptionID
	fn    func(dstate.ClusterEvent)
	limit int

	mu      sync.Mutex
	cond    sync.Cond
	queue   []dstate.ClusterEvent
	closed  bool
	lagging bool // events were dropped since the last resync
	st      SubscriberStats
}

func newSubscriber(id dstate.SubscriptionID, fn func(dstate.ClusterEvent), limit int) *subscriber {
	s := &subscriber{id: id, fn: fn, limit: limit}
	s.cond.L = &s.mu
	s.st.ID = id
	return s
}

// push queues ev; it reports false when the queue is full, and first when
// this starts a run of drops.
func (s *subscriber) push(ev dstate.ClusterEvent) (ok, first bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true, false
	}
	if len(s.queue) >= s.limit {
		s.st.Dropped++
		first = !s.lagging
		s.lagging = true
		return false, first
	}
	s.queue = append(s.queue, ev)
	s.cond.Signal()
	return true, false
}

func (s *subscriber) close() {
	s.mu.Lock()
	s.closed = true
	s.queue = nil
	s.cond.Signal()
	s.mu.Unlock()
}

func (s *subscriber) stats() SubscriberStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Queued = len(s.queue)
	return st
}

// run delivers s's events until it is closed.
func (m *Membership) run(s *subscriber) {
	defer m.subWG.Done()
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed && !s.lagging {
			s.cond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		if len(s.queue) == 0 {
			// Caught up after dropping events.
			s.mu.Unlock()
			m.resync(s)
			continue
		}
		ev := s.queue[0]
		s.queue[0] = dstate.ClusterEvent{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		m.deliver(s, ev)
	}
}

// resync queues the current state of every known member for a subscriber
// that dropped events.
func (m *Membership) resync(s *subscriber) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lagging || s.closed {
		return
	}
	s.lagging = false
	s.st.Resyncs++
	s.queue = append(s.queue, m.snapshotEvents(true)...)
	m.log.Info("subscriber caught up; resyncing it with the current members", "subscription", uint64(s.id),
		"dropped", s.st.Dropped)
}

// deliver calls s.fn, containing a panic.
func (m *Membership) deliver(s *subscriber, ev dstate.ClusterEvent) {
	defer func() {
		if r := recover(); r != nil {
			s.mu.Lock()
			s.st.Panics++
			s.mu.Unlock()
			m.log.Error("subscriber callback panicked", "subscription", uint64(s.id), "event", ev.String(),
				"panic", fmt.Sprint(r))
		}
	}()
	s.fn(ev)
	s.mu.Lock()
	s.st.Delivered++
	s.mu.Unlock()
}
