package dstatetest

import (
	"errors"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// ErrGenerationRegressed: a view's generation went backwards.
var ErrGenerationRegressed = errors.New("dstatetest: view generation went backwards")

// GenerationMonitor checks the protocol's monotonicity invariant on a
// [SimCluster]: no view held by a running node ever moves to a lower
// generation. A view that disappears (its owner left, or DropAndWait
// dropped it) is forgotten, and so is every view of an observer that
// restarted, since its memory is new.
type GenerationMonitor struct {
	last map[monitorKey]monitorEntry
	seen map[monitorKey]struct{}
}

type monitorKey struct {
	state           string
	observer, owner dstate.NodeID
}

type monitorEntry struct {
	epoch int
	gen   dstate.Generation
}

// NewGenerationMonitor returns a monitor that has seen nothing.
func NewGenerationMonitor() *GenerationMonitor {
	return &GenerationMonitor{last: make(map[monitorKey]monitorEntry), seen: make(map[monitorKey]struct{})}
}

// Check reads every view of c and returns an error wrapping
// ErrGenerationRegressed for the first one whose generation is lower than
// when Check last saw it. Call it after every step and every operation.
func (m *GenerationMonitor) Check(c *SimCluster) error {
	clear(m.seen)
	var err error
	c.EachView(func(v SimView) {
		k := monitorKey{v.State, v.Observer, v.Owner}
		m.seen[k] = struct{}{}
		epoch := c.Epoch(v.Observer)
		if prev, ok := m.last[k]; ok && prev.epoch == epoch && v.Generation.Less(prev.gen) && err == nil {
			err = fmt.Errorf("%w: at tick %d %s's view of %s@%s moved from %s to %s",
				ErrGenerationRegressed, c.Tick(), v.Observer, v.State, v.Owner, prev.gen, v.Generation)
		}
		m.last[k] = monitorEntry{epoch: epoch, gen: v.Generation}
	})
	for k := range m.last {
		if _, ok := m.seen[k]; !ok {
			delete(m.last, k)
		}
	}
	return err
}
