package raftpersist

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// forwardAs dials addr (over TLS when cfg is set), announces node ID claim
// and sends one forwarding request; it returns the OK payload or the
// error of the first step that failed (a *remoteError for a refusal).
func forwardAs(addr string, cfg *tls.Config, claim string, body []byte) ([]byte, error) {
	d := &net.Dialer{Timeout: time.Second}
	var conn net.Conn
	var err error
	if cfg != nil {
		conn, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(append([]byte{protoForward, byte(len(claim))}, claim...)); err != nil {
		return nil, err
	}
	if err := writeFrame(conn, body); err != nil {
		return nil, err
	}
	resp, err := readFrame(conn, 1<<20)
	if err != nil {
		return nil, err
	}
	return parseResponse(addr, resp)
}

// saveBody is a forwarded save request of envs.
func saveBody(envs ...*dstate.StoredEnvelope) []byte {
	return append(binary.AppendUvarint([]byte{reqApply}, 5000), encodeSaveCommand(envs)...)
}

// memberBody is a forwarded membership change request.
func memberBody(kind byte, id, addr string) []byte {
	b := appendString(appendString([]byte{reqMembership, kind}, id), addr)
	return binary.AppendUvarint(b, 5000)
}

// clientOf returns the TLS client config of a certificate the test CA
// issued to node name.
func clientOf(t *testing.T, ca *testCA, name string) *tls.Config {
	cfg := ca.config(t, name)
	cfg.ServerName = "127.0.0.1"
	return cfg
}

// followers returns the running non-leaders of c.
func followers(c *cluster) []*Store {
	l := c.leader()
	var out []*Store
	for i := range c.nodes {
		if s := c.node(i); i != l && s != nil {
			out = append(out, s)
		}
	}
	return out
}

// TestForwardedRequestsNeedTheRightNode: under mutual TLS a certificate
// the cluster's CA issued to a node that is not a member, or to another
// member, can neither save a node's envelope (with a generation that would
// fence the node out) nor change the raft configuration; a node's own
// forwarded saves and a voter's forwarded membership changes still work.
func TestForwardedRequestsNeedTheRightNode(t *testing.T) {
	ca := newTestCA(t)
	c := newCluster(t, 3, func(i int, cfg *Config) { cfg.TLS = ca.config(t, fmt.Sprint("n", i)) })
	ctx := ctxT(t, 30*time.Second)
	leader := c.node(c.leader())
	fs := followers(c)
	a, b := fs[0], fs[1]
	require.NoError(t, stateOf(b, "kv").Save(ctx, obj(1, 1, "b's own"), nil), "a follower's own save, forwarded")

	forged := env("kv", b.ID(), 1<<62, 0, "forged")
	t.Run("a non-member cannot save as another node", func(t *testing.T) {
		_, err := forwardAs(leader.Addr(), clientOf(t, ca, "x9"), "x9", saveBody(forged))
		require.ErrorIs(t, err, ErrForbidden)
		require.ErrorIs(t, err, ErrRemote)
	})
	t.Run("a member cannot save a third node's envelope", func(t *testing.T) {
		_, err := forwardAs(leader.Addr(), clientOf(t, ca, string(a.ID())), string(a.ID()), saveBody(env("kv", a.ID(), 1, 5, "a's"), forged))
		require.ErrorIs(t, err, ErrForbidden)
	})
	t.Run("a non-member cannot change membership", func(t *testing.T) {
		x9 := clientOf(t, ca, "x9")
		_, err := forwardAs(leader.Addr(), x9, "x9", memberBody(memberAddVoter, "x9", "127.0.0.1:1"))
		require.ErrorIs(t, err, ErrForbidden)
		_, err = forwardAs(leader.Addr(), x9, "x9", memberBody(memberRemove, string(b.ID()), ""))
		require.ErrorIs(t, err, ErrForbidden)
	})
	t.Run("a member saves its own envelope", func(t *testing.T) {
		cl := clientOf(t, ca, string(a.ID()))
		var err error
		for range 20 { // to the leader of the moment: leadership may move on a loaded machine
			_, err = forwardAs(c.node(c.leader()).Addr(), cl, string(a.ID()), saveBody(env("kv", a.ID(), 1, 1, "a's own")))
			var re *remoteError
			if !errors.As(err, &re) || re.status != statusNotLeader {
				break
			}
		}
		require.NoError(t, err)
	})

	got := leader.LoadLocal("kv", b.ID())
	require.NotNil(t, got)
	require.Equal(t, "b's own", string(got.Data), "the forged save must not be stored")
	require.NoError(t, stateOf(b, "kv").Save(ctx, obj(1, 2, "b again"), nil), "b is not fenced out")
	servers, err := leader.Servers()
	require.NoError(t, err)
	require.Len(t, servers, 3)
	r := leader.Refusals()
	require.Equal(t, uint64(2), r.ForeignSave)
	require.Equal(t, uint64(2), r.Membership)

	t.Run("a non-voter cannot change membership, a voter can", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0")
		cfg := fastConfig("n3", filepath.Join(t.TempDir(), "n3"), ln)
		cfg.TLS = ca.config(t, "n3")
		n3, err := New(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { _ = n3.Close() })
		require.NoError(t, a.AddNonvoter(ctx, "n3", n3.Addr()), "a voter's change, forwarded")
		eventually(t, 10*time.Second, func() bool { id, _ := n3.Leader(); return id != "" }, "n3 to learn the leader")
		err = n3.AddVoter(ctx, "n3", n3.Addr())
		require.ErrorIs(t, err, ErrForbidden, "a non-voter promoting itself")
		require.NoError(t, stateOf(n3, "kv").Save(ctx, obj(1, 1, "n3's own"), nil), "a non-voter's own save")
		require.ErrorIs(t, n3.RemoveServer(ctx, a.ID()), ErrForbidden, "a non-voter removing another server")
		require.NoError(t, n3.RemoveServer(ctx, "n3"), "a non-voter taking itself out (a server leaving)")
		require.NoError(t, a.AddVoter(ctx, "n3", n3.Addr()))
	})
}

// TestWithoutTLSTheAnnouncedIDIsChecked: without TLS nothing binds the
// announced node ID to the dialer, but the same rules hold for it: a
// client announcing a non-member's ID cannot save another node's envelope
// or change membership (one announcing a member's ID can act as it).
func TestWithoutTLSTheAnnouncedIDIsChecked(t *testing.T) {
	c := newCluster(t, 3, nil)
	leader := c.node(c.leader())
	b := followers(c)[1]
	_, err := forwardAs(leader.Addr(), nil, "x9", saveBody(env("kv", b.ID(), 1<<62, 0, "forged")))
	require.ErrorIs(t, err, ErrForbidden)
	_, err = forwardAs(leader.Addr(), nil, "x9", memberBody(memberRemove, string(b.ID()), ""))
	require.ErrorIs(t, err, ErrForbidden)
	require.Nil(t, leader.LoadLocal("kv", b.ID()))
}

// TestIsKnownNodeAdmitsOnlyMembers: with Config.IsKnownNode set, a
// connection is admitted only from a server of the raft configuration or a
// node the hook knows, even with a certificate of the cluster's CA.
func TestIsKnownNodeAdmitsOnlyMembers(t *testing.T) {
	ca := newTestCA(t)
	c := newCluster(t, 3, func(i int, cfg *Config) {
		cfg.TLS = ca.config(t, fmt.Sprint("n", i))
		cfg.IsKnownNode = func(id dstate.NodeID) bool { return id == "m5" }
	})
	ctx := ctxT(t, 10*time.Second)
	f := followers(c)[0]
	require.NoError(t, stateOf(f, "s").Save(ctx, obj(1, 1, "x"), nil), "servers of the configuration are admitted")
	leader := c.node(c.leader())
	require.Error(t, askStats(leader.Addr(), clientOf(t, ca, "x9"), "x9"), "a node nobody knows")
	require.NoError(t, askStats(leader.Addr(), clientOf(t, ca, "m5"), "m5"), "a member the hook knows")
	eventually(t, 5*time.Second, func() bool { return leader.Refusals().UnknownNode == 1 }, "the refusal to be counted")
}
