package bench

import (
	"testing"
	"time"
)

func TestWatchSmoke(t *testing.T) {
	r, err := Watch(smokeCtx(t), WatchConfig{Mutations: 300, Rate: 3000, PollInterval: time.Millisecond, Watchers: 20, FanOutFor: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r, "replication p50 (visible in n1's engine)", "watcher told p99", "poller (1ms) saw p50", "heap per idle watcher (20 watchers)")
}
