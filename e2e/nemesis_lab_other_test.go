//go:build !linux

package e2e

import "testing"

// nemesisCluster starts the nemesis's n agents on loopback: network
// namespaces (and so the network faults) are Linux only.
func nemesisCluster(t *testing.T, n int) (*cluster, netControl, string) {
	return newCluster(t, n, clusterOpts{}), nil, "network namespaces are Linux only"
}
