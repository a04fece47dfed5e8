package dstatetest

import (
	"sync"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TestClusterEvents is a ClusterEvents fed by hand with Emit. Callbacks run
// synchronously in Emit, outside the lock, so a callback may subscribe or
// unsubscribe without deadlock. Safe for concurrent use.
type TestClusterEvents struct {
	mu   sync.Mutex
	next dstate.SubscriptionID
	subs map[dstate.SubscriptionID]func(dstate.ClusterEvent)
	ids  []dstate.SubscriptionID // subscription order
}

var _ dstate.ClusterEvents = (*TestClusterEvents)(nil)

// NewTestClusterEvents returns a feed with no subscribers.
func NewTestClusterEvents() *TestClusterEvents {
	return &TestClusterEvents{subs: make(map[dstate.SubscriptionID]func(dstate.ClusterEvent))}
}

// Subscribe registers fn.
func (c *TestClusterEvents) Subscribe(fn func(dstate.ClusterEvent)) (dstate.SubscriptionID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	c.subs[c.next] = fn
	c.ids = append(c.ids, c.next)
	return c.next, nil
}

// Unsubscribe removes a subscription; unknown IDs are ignored.
func (c *TestClusterEvents) Unsubscribe(id dstate.SubscriptionID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.subs[id]; !ok {
		return nil
	}
	delete(c.subs, id)
	for i, x := range c.ids {
		if x == id {
			c.ids = append(c.ids[:i:i], c.ids[i+1:]...)
			break
		}
	}
	return nil
}

// Subscribers returns the number of live subscriptions.
func (c *TestClusterEvents) Subscribers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// Emit delivers ev to every subscriber, in subscription order.
func (c *TestClusterEvents) Emit(ev dstate.ClusterEvent) {
	c.mu.Lock()
	fns := make([]func(dstate.ClusterEvent), 0, len(c.ids))
	for _, id := range c.ids {
		fns = append(fns, c.subs[id])
	}
	c.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}
