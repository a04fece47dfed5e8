package serfevents_test

import (
	"bytes"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/serfevents"
)

// The gossip port is reachable by anyone who can reach the node: without a
// keyring by anyone at all, with one by anyone holding the key. These
// tests send it what an attacker would, byte for byte, and check that the
// node stays up, keeps its members and allocates a bounded amount. A
// malformed message that panics inside memberlist kills the whole test
// binary, so each of these fails loudly on a memberlist without the fix.

// memberlist's message types and the structures it decodes (net.go), kept
// here by field name: memberlist encodes structs as msgpack maps keyed by
// field name, so these encode exactly as its own do.
const (
	mlPushPullMsg = 6
	mlCompressMsg = 9
	mlLZWAlgo     = 0
)

type mlPushPullHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}

type mlPushNodeState struct {
	Name        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Incarnation uint32
	State       int
	Vsn         []uint8
}

type mlCompress struct {
	Algo int
	Buf  []byte
}

// mlMessage is one memberlist message: the type byte, then each value
// msgpack-encoded the way memberlist encodes it.
func mlMessage(t testing.TB, msgType byte, values ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte(msgType)
	enc := codec.NewEncoder(&buf, &codec.MsgpackHandle{})
	for _, v := range values {
		require.NoError(t, enc.Encode(v))
	}
	return buf.Bytes()
}

// lzwZeroBomb returns an LZW stream (LSB order, 8-bit literals, as
// memberlist's compress messages use) that decompresses to at least n zero
// bytes. It is written code by code rather than by compress/lzw: the
// encoder resets its table every 4,096 codes, which caps its ratio near
// 1,300:1; a stream that fills the table once with ever longer runs of
// zeros and then repeats the longest run reaches 2,500:1, so a 1 GiB bomb
// is 420 KB and takes no time to build.
func lzwZeroBomb(n int) []byte {
	var out []byte
	var acc uint64
	var nbits uint
	put := func(code uint64, width uint) {
		acc |= code << nbits
		nbits += width
		for nbits >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			nbits -= 8
		}
	}
	const first, last, eof = 258, 4095, 257
	put(0, 9) // the literal 0; the decoder's next code is 258
	total := 1
	// Code c (258..4095) is "the previous string plus a zero": c-256 zeros,
	// written in as many bits as the decoder reads at that point.
	for c := uint64(first); c <= last; c++ {
		put(c, max(9, uint(bitLen(c))))
		total += int(c) - 256
	}
	// The table is full: the decoder stops adding codes and 4095 stays
	// 3,839 zeros, 12 bits each time.
	for total < n {
		put(last, 12)
		total += last - 256
	}
	put(eof, 12)
	if nbits > 0 {
		out = append(out, byte(acc))
	}
	return out
}

func bitLen(c uint64) int {
	n := 0
	for ; c > 0; c >>= 1 {
		n++
	}
	return n
}

// sendStream writes msg on a new TCP connection to addr and then waits
// until the node closes it or a deadline passes: memberlist handles one
// message per stream connection.
func sendStream(t testing.TB, addr string, msg []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(waitFor)))
	_, err = conn.Write(msg)
	require.NoError(t, err)
	_, _ = conn.Read(make([]byte, 1<<16)) // the node answers or hangs up
}

// stillServing checks that m keeps its membership: a new node can join it
// and both see each other alive.
func stillServing(t *testing.T, m *serfevents.Membership, dir string) {
	t.Helper()
	cfg := testConfig("n9", dir)
	cfg.SnapshotPath = ""
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
	// 27 bytes: memberlist v0.5 allocated a slice of -1 nodes and panicked
	// (makeslice: len out of range).
	msg := mlMessage(t, mlPushPullMsg, mlPushPullHeader{Nodes: -1, Join: true})
	t.Logf("push/pull header of %d bytes", len(msg))
	sendStream(t, m.LocalNode().Addr, msg)
	stillServing(t, m, dir)
}

func TestGossipPortSurvivesANodeWithAShortVersionVector(t *testing.T) {
	dir := t.TempDir()
	m := start(t, testConfig("n1", dir))
	// A push/pull that joins a node announcing one protocol version instead
	// of six: memberlist v0.6 indexed past the end of the vector.
	for _, vsn := range [][]uint8{{1}, {1, 5, 2}, {1, 5, 2, 2, 5}} {
		msg := mlMessage(t, mlPushPullMsg,
			mlPushPullHeader{Nodes: 1, Join: true},
			mlPushNodeState{Name: "intruder", Addr: net.IPv4(127, 0, 0, 1).To4(), Port: 1, Incarnation: 1, Vsn: vsn})
		sendStream(t, m.LocalNode().Addr, msg)
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
	bomb := lzwZeroBomb(1 << 30)
	msg := mlMessage(t, mlCompressMsg, mlCompress{Algo: mlLZWAlgo, Buf: bomb})
	t.Logf("a %d-byte stream message that decompresses to 1 GiB", len(msg))
	n := allocatedDuring(func() { sendStream(t, m.LocalNode().Addr, msg) })
	t.Logf("allocated %d MiB while the node handled it", n>>20)
	require.Less(t, n, uint64(bombLimit), "the node decompressed the bomb")
	stillServing(t, m, dir)
}

func TestGossipPortRefusesDecompressionBombsOverUDP(t *testing.T) {
	dir := t.TempDir()
	m := start(t, testConfig("n1", dir))
	// The largest bomb one datagram carries: about 64 KB that expand to
	// 128 MiB.
	bomb := lzwZeroBomb(128 << 20)
	msg := mlMessage(t, mlCompressMsg, mlCompress{Algo: mlLZWAlgo, Buf: bomb})
	require.Less(t, len(msg), 65000, "fits in one datagram")
	conn, err := net.Dial("udp", m.LocalNode().Addr)
	require.NoError(t, err)
	defer conn.Close()
	const packets = 2
	n := allocatedDuring(func() {
		for range packets {
			_, err := conn.Write(msg)
			require.NoError(t, err)
		}
		// One goroutine handles the datagrams in order: once it answers a
		// ping sent after them, it is past the bombs.
		ping(t, conn, "n1")
	})
	t.Logf("allocated %d MiB for %d datagrams of %d bytes", n>>20, packets, len(msg))
	// Each 128 MiB bomb costs 512 MiB without the cap.
	require.Less(t, n, uint64(packets*bombLimit*3/4), "the node decompressed the bombs")
	stillServing(t, m, dir)
}

// ping sends a memberlist ping to node over conn and waits for its ack
// (which may come compressed, or in a compound message with gossip
// piggybacked).
func ping(t testing.TB, conn net.Conn, node string) {
	t.Helper()
	type mlPing struct {
		SeqNo uint32
		Node  string
	}
	const mlPingMsg, mlAckRespMsg, mlCompoundMsg = 0, 2, 7
	replies := []byte{mlAckRespMsg, mlCompoundMsg, mlCompressMsg}
	// Refusing a bomb takes seconds under the race detector.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(4*waitFor)))
	buf := make([]byte, 1<<16)
	for seq := uint32(1); ; seq++ {
		_, err := conn.Write(mlMessage(t, mlPingMsg, mlPing{SeqNo: seq, Node: node}))
		require.NoError(t, err)
		n, err := conn.Read(buf)
		require.NoError(t, err, "no ack to a ping sent after the bombs")
		if n > 0 && bytes.IndexByte(replies, buf[0]) >= 0 {
			return
		}
	}
}
