package dstatetest

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Errors of the GenerationMonitor.
var (
	// ErrGenerationRegressed: a view's generation went backwards.
	ErrGenerationRegressed = errors.New("dstatetest: view generation went backwards")
	// ErrViewLost: a running node lost its view of a node that did not
	// leave.
	ErrViewLost = errors.New("dstatetest: view lost")
)

// GenerationMonitor checks the protocol's invariants on a [SimCluster]
// after every step and operation:
//   - monotonicity: no view held by a running node ever moves to a lower
//     generation;
//   - values: every view holds, at its generation g, exactly the value its
//     owner had at g (the cluster records every owner's value per
//     generation), so a delta applied to the wrong base is caught when it
//     happens, not only if it survives to the end of the run; and no owner
//     publishes one generation with two values;
//   - no loss: no view disappears while its owner is a member, unless the
//     observer was told the owner left, or it cannot read the owner's wire
//     version and drops unreadable views (DropAndWait).
//
// The views of an observer that crashed or restarted are forgotten, since
// its memory is new.
type GenerationMonitor struct {
	last map[monitorKey]monitorEntry
	seen map[monitorKey]struct{}
	seq  uint64 // the cluster's membership event count at the last check
}

type monitorKey struct {
	state           string
	observer, owner dstate.NodeID
}

type monitorEntry struct {
	epoch int
	gen   dstate.Generation
	obj   any // the view object whose value was checked
}

// NewGenerationMonitor returns a monitor that has seen nothing.
func NewGenerationMonitor() *GenerationMonitor {
	return &GenerationMonitor{last: make(map[monitorKey]monitorEntry), seen: make(map[monitorKey]struct{})}
}

// Check reads every view of c and returns the first violation: an error
// wrapping ErrGenerationRegressed for a view whose generation is lower than
// when Check last saw it, ErrWrongValue for a view whose value is not its
// owner's at its generation, or ErrViewLost. Call it after every step and
// every operation.
func (m *GenerationMonitor) Check(c *SimCluster) error {
	clear(m.seen)
	err := c.HistoryError()
	for _, obs := range c.order {
		n := c.nodes[obs]
		if n.status != SimUp {
			continue
		}
		for _, st := range n.states {
			for _, own := range st.owners() {
				info, _ := st.view(own)
				k := monitorKey{st.name(), obs, own}
				m.seen[k] = struct{}{}
				// A leave told to the observer since the last check ends
				// the view's history: the owner may have rejoined since.
				left := c.leftTold[[2]dstate.NodeID{obs, own}] > m.seq
				prev, ok := m.last[k]
				if ok && !left && prev.epoch == n.epoch && info.gen.Less(prev.gen) && err == nil {
					err = fmt.Errorf("%w: at tick %d %s's view of %s@%s moved from %s to %s",
						ErrGenerationRegressed, c.Tick(), obs, k.state, own, prev.gen, info.gen)
				}
				m.last[k] = monitorEntry{epoch: n.epoch, gen: info.gen, obj: info.obj}
				// A view object is immutable: its value needs checking
				// once.
				if err == nil && (!ok || prev.obj != info.obj || prev.gen != info.gen) {
					err = c.checkValue(k.state, obs, own)
				}
			}
		}
	}
	var gone []monitorKey
	for k := range m.last {
		if _, ok := m.seen[k]; !ok {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, func(a, b monitorKey) int {
		return cmp.Or(cmp.Compare(a.state, b.state), cmp.Compare(a.observer, b.observer), cmp.Compare(a.owner, b.owner))
	})
	for _, k := range gone {
		prev := m.last[k]
		delete(m.last, k)
		lost := c.Status(k.observer) == SimUp && c.Epoch(k.observer) == prev.epoch && c.Status(k.owner) != SimLeft &&
			c.leftTold[[2]dstate.NodeID{k.observer, k.owner}] <= m.seq && !c.dropsUnreadable(k.state, k.observer, k.owner)
		if lost && err == nil {
			err = fmt.Errorf("%w: at tick %d %s no longer holds a %s view of member %s (was at %s)",
				ErrViewLost, c.Tick(), k.observer, k.state, k.owner, prev.gen)
		}
	}
	m.seq = c.memberSeq
	return err
}

// checkValue compares observer's view of owner's state with the value the
// owner had at the view's generation.
func (c *SimCluster) checkValue(state string, observer, owner dstate.NodeID) error {
	st := c.nodes[observer].state(state)
	if st == nil {
		return nil
	}
	info, ok := st.view(owner)
	if !ok || info.gen.IsZero() {
		return nil
	}
	got, ok := st.encoded(owner)
	if !ok {
		return fmt.Errorf("%w: at tick %d %s cannot encode its view of %s@%s at %s", ErrWrongValue, c.Tick(), observer, state, owner, info.gen)
	}
	want, ok := c.ownValue(state, owner, info.gen)
	switch {
	case !ok:
		return fmt.Errorf("%w: at tick %d %s holds %s@%s at %s = %s, a generation %s never had",
			ErrWrongValue, c.Tick(), observer, state, owner, info.gen, st.describe(owner), owner)
	case want != string(got):
		return fmt.Errorf("%w: at tick %d %s holds %s@%s at %s = %s, but %s had %q at that generation (encoded), not %q",
			ErrWrongValue, c.Tick(), observer, state, owner, info.gen, st.describe(owner), owner, want, got)
	}
	return nil
}

// CheckQuery checks a query's result on the node: its stale and failed
// peers are sorted, every failed peer is stale, and every view the node
// holds (what the query reads) is its owner's value at its generation.
func (c *SimCluster) CheckQuery(id dstate.NodeID, state string, res dstate.QueryResult) error {
	if !slices.IsSorted(res.Stale) || !slices.IsSorted(res.Failed) {
		return fmt.Errorf("dstatetest: query of %s on %s: stale %v or failed %v not sorted", state, id, res.Stale, res.Failed)
	}
	for _, f := range res.Failed {
		if _, ok := slices.BinarySearch(res.Stale, f); !ok {
			return fmt.Errorf("dstatetest: query of %s on %s: failed peer %s is not stale (%v)", state, id, f, res.Stale)
		}
	}
	n := c.nodes[id]
	if n == nil || n.status != SimUp {
		return nil
	}
	st := n.state(state)
	if st == nil {
		return fmt.Errorf("%w: %s", ErrNoSuchState, state)
	}
	for _, own := range st.owners() {
		if err := c.checkValue(state, id, own); err != nil {
			return fmt.Errorf("query: %w", err)
		}
	}
	return nil
}

// state returns the node's engine of the named state, or nil.
func (n *simNode) state(name string) simState {
	for _, st := range n.states {
		if st.name() == name {
			return st
		}
	}
	return nil
}
