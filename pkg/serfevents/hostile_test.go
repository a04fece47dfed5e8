package serfevents_test

import (
	"encoding/base64"
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/internal/gossipattack"
	"github.com/dstate-go/dstate/pkg/serfevents"
)

// The gossip port is reachable by anyone who can reach the node: without a
// keyring by anyone at all, with one by anyone holding the key. These
// tests send it what an attacker would, byte for byte, and check that the
// node stays up, keeps its members and allocates a bounded amount. A
// malformed message that panics inside memberlist kills the whole test
// binary, so each of these fails loudly on a memberlist without the fix.

// stillServing checks that m keeps its membership: a new node can join it
// and both see each other alive.
func stillServing(t *testing.T, m *serfevents.Membership, dir string, keys ...string) {
	t.Helper()
	cfg := testConfig("n9", dir)
	cfg.SnapshotPath = ""
	cfg.Keys = keys
	other := start(t, cfg)
	ctx, cancel := contextWithTimeout(t, waitFor)
	defer cancel()
	_, err := other.Join(ctx, []string{m.LocalNode().Addr})
	require.NoError(t, err)
	eventually(t, "the attacked node sees the new member", func() bool { return len(m.Members()) == 2 })
}

// allocatedDuring returns the bytes allocated by the whole process while
// fn ran.
func allocatedDuring(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestGossipPortSurvivesAPushPullHeaderWithANegativeNodeCount(t *testing.T) {
	dir := t.TempDir()
	m := start(t, testConfig("n1", dir))
	require.NoError(t, gossipattack.SendStream(m.LocalNode().Addr, gossipattack.NegativePushPull(), waitFor))
	stillServing(t, m, dir)
}

func TestGossipPortSurvivesANodeWithAShortVersionVector(t *testing.T) {
	dir := t.TempDir()
	m := start(t, testConfig("n1", dir))
	for _, vsn := range [][]uint8{{1}, {1, 5, 2}, {1, 5, 2, 2, 5}} {
		require.NoError(t, gossipattack.SendStream(m.LocalNode().Addr, gossipattack.ShortVersionJoin(vsn...), waitFor))
	}
	stillServing(t, m, dir)
}

// bombLimit is what a decompression bomb may make the node allocate in
// all: memberlist caps a decompressed message at 40 MB (twice its push/pull
// state limit); growing a buffer to that cap allocates 128 MiB in all, and
// twice that under the race detector. Without the cap the node
// decompresses the whole bomb: 4 GiB allocated for a 1 GiB bomb.
const bombLimit = 512 << 20

func TestGossipPortRefusesADecompressionBombOverTCP(t *testing.T) {
	dir := t.TempDir()
	m := start(t, testConfig("n1", dir))
	bomb := gossipattack.Bomb(1 << 30)
	t.Logf("a %d-byte stream message that decompresses to 1 GiB", len(bomb))
	n := allocatedDuring(func() {
		// Refusing a bomb takes seconds under the race detector.
		require.NoError(t, gossipattack.SendStream(m.LocalNode().Addr, bomb, 4*waitFor))
	})
	t.Logf("allocated %d MiB while the node handled it", n>>20)
	require.Less(t, n, uint64(bombLimit), "the node decompressed the bomb")
	stillServing(t, m, dir)
}

func TestGossipPortRefusesDecompressionBombsOverUDP(t *testing.T) {
	dir := t.TempDir()
	m := start(t, testConfig("n1", dir))
	bomb := gossipattack.Bomb(128 << 20) // about the largest one datagram carries
	require.Less(t, len(bomb), 65000, "fits in one datagram")
	conn, err := net.Dial("udp", m.LocalNode().Addr)
	require.NoError(t, err)
	defer conn.Close()
	const packets = 2
	n := allocatedDuring(func() {
		for range packets {
			_, err := conn.Write(bomb)
			require.NoError(t, err)
		}
		require.NoError(t, gossipattack.Ping(conn, nil, "", "n1", 4*waitFor))
	})
	t.Logf("allocated %d MiB for %d datagrams of %d bytes", n>>20, packets, len(bomb))
	// Each 128 MiB bomb costs 512 MiB without the cap.
	require.Less(t, n, uint64(packets*bombLimit*3/4), "the node decompressed the bombs")
	stillServing(t, m, dir)
}

// TestGossipPortWithAKeyringSurvivesAKeyHolder sends the same messages,
// encrypted with the cluster's gossip key, to a node with a keyring: the
// decoders run after decryption, so anyone holding the key reaches them.
func TestGossipPortWithAKeyringSurvivesAKeyHolder(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	key, err := base64.StdEncoding.DecodeString(k)
	require.NoError(t, err)
	cfg := testConfig("n1", dir)
	cfg.Keys = []string{k}
	m := start(t, cfg)
	addr := m.LocalNode().Addr

	var n uint64
	for _, msg := range [][]byte{
		gossipattack.NegativePushPull(),
		gossipattack.ShortVersionJoin(1),
		gossipattack.Bomb(1 << 30),
	} {
		n += allocatedDuring(func() {
			require.NoError(t, gossipattack.SendStream(addr, gossipattack.EncryptedStream(key, "", msg), 4*waitFor))
		})
	}
	conn, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer conn.Close()
	n += allocatedDuring(func() {
		_, err := conn.Write(gossipattack.EncryptedPacket(key, "", gossipattack.Bomb(128<<20)))
		require.NoError(t, err)
		require.NoError(t, gossipattack.Ping(conn, key, "", "n1", 4*waitFor))
	})
	t.Logf("allocated %d MiB for the encrypted attacks", n>>20)
	require.Less(t, n, uint64(bombLimit+bombLimit*3/4), "the node decompressed a bomb")
	stillServing(t, m, dir, k)
}
