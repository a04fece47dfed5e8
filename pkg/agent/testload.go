package agent

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/node"
)

// TestLoadState is the in-memory delta kv state an agent started with
// TestHooks.LoadRate mutates.
const TestLoadState = "test-load"

// testLoadKeys is the test load's key space: small, so that the load
// measures replication rather than the kv state's copy of its own view,
// which grows with the map.
var testLoadKeys = func() []string {
	keys := make([]string, 64)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	return keys
}()

// loadStats counts the test load generator's work.
type loadStats struct {
	written, refused, behind atomic.Uint64
}

// startTestLoad registers test-load and mutates it TestHooks.LoadRate
// times per second over a bounded key space, from several writers, until
// the agent stops or TestHooks.LoadFor has passed. Writes the state's
// actor refuses (a full mailbox) are counted as
// refused; ticks whose writes were not all issued by the next tick are
// counted as behind. Both are backpressure, shown in
// dstate_test_load_total.
func (b *builtins) startTestLoad(ctx context.Context, cfg dstate.StateConfig) error {
	s, err := registerDelta(ctx, b.node, b.states, KVDef{StateName: TestLoadState}, node.StateOptions[KV]{Config: cfg, Initial: KV{}})
	if err != nil {
		return fmt.Errorf("agent: register %s: %w", TestLoadState, err)
	}
	b.mu.Lock()
	b.testLoad = s
	b.mu.Unlock()
	const tick = 10 * time.Millisecond
	const writers = 8
	perTick := max(1, b.hooks.LoadRate/int(time.Second/tick))
	work := make(chan int, perTick)
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				c := KVChange{Key: testLoadKeys[i%len(testLoadKeys)], Value: strconv.Itoa(i)}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, _, err := s.MutateDelta(ctx, func(m *KV) KVChange {
					*m = m.Apply(c)
					return c
				})
				cancel()
				if err != nil {
					b.loadStats.refused.Add(1)
					if !errors.Is(err, dstate.ErrMailboxFull) {
						b.log.Debug("test load: write failed", "err", err)
					}
					continue
				}
				b.loadStats.written.Add(1)
			}
		}()
	}
	b.bg.Add(1)
	go func() {
		defer b.bg.Done()
		defer wg.Wait()
		defer close(work)
		t := time.NewTicker(tick)
		defer t.Stop()
		var until <-chan time.Time
		if b.hooks.LoadFor > 0 {
			end := time.NewTimer(b.hooks.LoadFor)
			defer end.Stop()
			until = end.C
		}
		n := 0
		for {
			select {
			case <-b.stop:
				return
			case <-until:
				b.log.Info("test load finished", "written", b.loadStats.written.Load(),
					"refused", b.loadStats.refused.Load(), "behind", b.loadStats.behind.Load())
				return
			case <-t.C:
			}
		issue:
			for range perTick {
				select {
				case work <- n:
					n++
				case <-b.stop:
					return
				case <-t.C:
					b.loadStats.behind.Add(1)
					break issue
				}
			}
		}
	}()
	return nil
}
