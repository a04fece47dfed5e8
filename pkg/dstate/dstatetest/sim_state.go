package dstatetest

import (
	"fmt"
	"strconv"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// simState is the type-erased face of one engine of a simulated node: what
// the cluster needs to drive it and to compare its views.
type simState interface {
	name() string
	handle(m *dstate.WireMessage) []dstate.Action
	joined(id dstate.NodeID) []dstate.Action
	left(id dstate.NodeID)
	failed(id dstate.NodeID)
	periodic() []dstate.Action
	digestEntry() dstate.ChangeNotification
	query(maxStaleness time.Duration) dstate.QueryResult
	generation() dstate.Generation
	// owners returns, sorted, the nodes this engine holds a view of (self
	// included).
	owners() []dstate.NodeID
	// view returns the generation, pending generation and encoded value of
	// the view of owner.
	view(owner dstate.NodeID) (simViewInfo, bool)
	// encoded returns the encoding of the view of owner, for comparisons.
	encoded(owner dstate.NodeID) ([]byte, bool)
	// describe formats the value of the view of owner for people.
	describe(owner dstate.NodeID) string
	metrics() dstate.SyncMetrics
	schedule() *simSchedule
}

// simViewInfo is the comparable part of one view.
type simViewInfo struct {
	gen, pending dstate.Generation
	// obj identifies the view object: the engine publishes a new one on
	// every change and never reuses one while it is referenced.
	obj any
}

// simSchedule is when an engine's periodic sync fires: every period ticks,
// offset by phase from the node's start.
type simSchedule struct {
	period int64
	phase  int64
}

// simEngine adapts an *dstate.Engine (simple or the engine of a delta
// state) to simState.
type simEngine[S, V any] struct {
	e      *dstate.Engine[S, V]
	encode func(V) ([]byte, error)
	format func(V) string
	sched  simSchedule
}

func (s *simEngine[S, V]) name() string                                 { return s.e.Name() }
func (s *simEngine[S, V]) handle(m *dstate.WireMessage) []dstate.Action { return s.e.HandleWire(m) }
func (s *simEngine[S, V]) joined(id dstate.NodeID) []dstate.Action      { return s.e.OnNodeJoined(id) }
func (s *simEngine[S, V]) left(id dstate.NodeID)                        { s.e.OnNodeLeft(id) }
func (s *simEngine[S, V]) failed(id dstate.NodeID)                      { s.e.OnNodeFailed(id) }
func (s *simEngine[S, V]) periodic() []dstate.Action                    { return s.e.PeriodicSync() }
func (s *simEngine[S, V]) digestEntry() dstate.ChangeNotification       { return s.e.DigestEntry() }
func (s *simEngine[S, V]) generation() dstate.Generation                { return s.e.Generation() }
func (s *simEngine[S, V]) owners() []dstate.NodeID                      { return s.e.Views().Nodes() }
func (s *simEngine[S, V]) metrics() dstate.SyncMetrics                  { return s.e.Metrics() }
func (s *simEngine[S, V]) schedule() *simSchedule                       { return &s.sched }

func (s *simEngine[S, V]) query(maxStaleness time.Duration) dstate.QueryResult {
	return s.e.Query(maxStaleness)
}

func (s *simEngine[S, V]) view(owner dstate.NodeID) (simViewInfo, bool) {
	v, ok := s.e.Views().Get(owner)
	if !ok {
		return simViewInfo{}, false
	}
	return simViewInfo{gen: v.Generation, pending: v.Pending, obj: v}, true
}

func (s *simEngine[S, V]) encoded(owner dstate.NodeID) ([]byte, bool) {
	v, ok := s.e.Views().Get(owner)
	if !ok {
		return nil, false
	}
	b, err := s.encode(v.Value)
	if err != nil {
		return nil, false
	}
	return b, true
}

func (s *simEngine[S, V]) describe(owner dstate.NodeID) string {
	v, ok := s.e.Views().Get(owner)
	if !ok {
		return ""
	}
	return s.format(v.Value)
}

// FormatCounter formats a Counter for tables and traces: its count, and its
// label when set ("7", "7 \"x\"").
func FormatCounter(c Counter) string {
	if c.Label == "" {
		return strconv.FormatInt(c.Count, 10)
	}
	return fmt.Sprintf("%d %q", c.Count, c.Label)
}
