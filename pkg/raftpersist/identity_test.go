package raftpersist

import (
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// askStats dials addr with cfg, announces the forwarding protocol under
// node ID claim and asks for the store's stats; it returns the error of the
// first step that failed.
func askStats(addr string, cfg *tls.Config, claim string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write(append([]byte{protoForward, byte(len(claim))}, claim...)); err != nil {
		return err
	}
	if err := writeFrame(conn, []byte{reqStats}); err != nil {
		return err
	}
	_, err = readFrame(conn, 1<<20)
	return err
}

// TestMutualTLSBindsTheAnnouncedNodeID: a client holding a valid
// certificate of the cluster's CA is served under the node ID its
// certificate names, and refused under any other.
func TestMutualTLSBindsTheAnnouncedNodeID(t *testing.T) {
	ca := newTestCA(t)
	c := newCluster(t, 1, func(i int, cfg *Config) { cfg.TLS = ca.config(t, fmt.Sprint("n", i)) })
	addr := c.node(c.leader()).Addr()

	honest := ca.config(t, "n7")
	honest.ServerName = "127.0.0.1"
	require.NoError(t, askStats(addr, honest, "n7"), "a client announcing the ID its certificate names is served")

	forger := ca.config(t, "n7")
	forger.ServerName = "127.0.0.1"
	err := askStats(addr, forger, "n0")
	require.Error(t, err, "a client announcing another node's ID must get no answer")
}
