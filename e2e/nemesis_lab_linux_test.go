//go:build linux

package e2e

import (
	"testing"
	"time"
)

// nemesisCluster starts the nemesis's n agents: each in a network
// namespace of its own, over the delaying relay (no delay until the
// nemesis sets one), so the nemesis can draw network faults; on a loopback
// cluster without them, with the reason, where the lab cannot be built.
func nemesisCluster(t *testing.T, n int) (*cluster, netControl, string) {
	if why := netLabUnavailable(); why != "" {
		return newCluster(t, n, clusterOpts{}), nil, why
	}
	lab := newNetLab(t, n)
	lab.startRelay(0, 0)
	return startNetCluster(t, lab, clusterOpts{}), lab, ""
}

func (l *netLab) canDelay() bool { return l.relay != nil }

func (l *netLab) delay(d, jitter time.Duration) {
	if l.relay != nil {
		l.relay.setDelay(d, jitter)
	}
}
