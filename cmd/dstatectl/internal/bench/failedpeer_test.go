package bench

import (
	"testing"
	"time"
)

func TestFailedPeerSmoke(t *testing.T) {
	r, err := FailedPeer(smokeCtx(t), FailedPeerConfig{Queries: 50, PullTimeout: time.Minute, MaxStaleness: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "query p50, max staleness 0", "query p99, max staleness 0", "query max, max staleness 20ms")
}
