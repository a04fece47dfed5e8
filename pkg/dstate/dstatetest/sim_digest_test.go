package dstatetest_test

import (
	"testing"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// pushOnly is active push with no periodic full sync.
func pushOnly() dstate.StateConfig {
	return dstate.StateConfig{SyncStrategy: dstate.ActivePushStrategy(), PullTimeout: time.Second}
}

// TestSimLinkResetRepairedByDigest: a delta lost with a reset link is
// repaired by the digest the sender sends over the new link, long before
// the next periodic digest, with no further write and no periodic sync.
func TestSimLinkResetRepairedByDigest(t *testing.T) {
	c := newSim(t, dstatetest.SimConfig{States: dstatetest.SimGauges, GaugesConfig: pushOnly(), DigestInterval: time.Hour})
	if err := c.Settle(20); err != nil {
		t.Fatal(err)
	}
	g, err := c.SetGauge("n1", "cpu", 7, dstate.Default)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ResetLink("n1", "n2"); err != nil {
		t.Fatal(err)
	}
	if err := c.Settle(10); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.View("n2", "n1", "gauges"); v.Generation != g {
		t.Fatalf("n2 holds n1's gauges at %s, want %s", v.Generation, g)
	}
	m, _ := c.Metrics("n2", "gauges")
	if m.DigestsBehind != 1 || m.SnapshotRequestsSent != 1 {
		t.Fatalf("n2: %d digests behind, %d requests; want 1 and 1", m.DigestsBehind, m.SnapshotRequestsSent)
	}
}

// TestSimLostTailRepairedByPeriodicDigest: the last writes of a burst are
// all lost and nothing is written afterwards; without digests the views
// stay behind, with them they converge within one digest interval and a
// round trip.
func TestSimLostTailRepairedByPeriodicDigest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		digest time.Duration
		want   bool
	}{{"without digests", 0, false}, {"with digests", time.Second, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSim(t, dstatetest.SimConfig{Nodes: 4, CounterConfig: pushOnly(), GaugesConfig: pushOnly(), DigestInterval: tc.digest})
			if err := c.Settle(30); err != nil {
				t.Fatal(err)
			}
			for i, id := range c.Live() {
				if _, err := c.SetGauge(id, "k", int64(i), dstate.Default); err != nil {
					t.Fatal(err)
				}
				if _, err := c.MutateCounter(id, dstate.Default, incr(1)); err != nil {
					t.Fatal(err)
				}
			}
			c.LoseInFlight()
			err := c.Settle(10 + 3) // one interval of 10 ticks, a request and its answer
			if got := err == nil; got != tc.want {
				t.Fatalf("converged: %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}
