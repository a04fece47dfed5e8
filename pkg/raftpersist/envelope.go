package raftpersist

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// The state machine keeps one dstate.StoredEnvelope per (state name, node
// ID): the StateObject in encoded form, Data being the state encoded with
// its definition's EncodeState in StorageVersion. An envelope the store
// returns is a copy the caller owns; one it stores is never mutated (Apply
// replaces it).

func cloneEnvelope(e *dstate.StoredEnvelope) *dstate.StoredEnvelope {
	c := *e
	c.Data = bytes.Clone(e.Data)
	return &c
}

// sameEnvelope reports whether e and o are the same save (used to make a
// retried save idempotent).
func sameEnvelope(e, o *dstate.StoredEnvelope) bool {
	return e.State == o.State && e.Node == o.Node && e.Generation == o.Generation &&
		e.StorageVersion == o.StorageVersion && e.CreatedUnixMs == o.CreatedUnixMs &&
		e.ModifiedUnixMs == o.ModifiedUnixMs && bytes.Equal(e.Data, o.Data)
}

// Encoding: all integers are uvarints (signed ones zig-zag varints),
// strings and byte slices are length-prefixed.

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEnvelope(b []byte, e *dstate.StoredEnvelope) []byte {
	b = appendString(b, e.State)
	b = appendString(b, string(e.Node))
	b = binary.AppendUvarint(b, e.Generation.Incarnation)
	b = binary.AppendUvarint(b, e.Generation.Age)
	b = binary.AppendUvarint(b, uint64(e.StorageVersion))
	b = binary.AppendVarint(b, e.CreatedUnixMs)
	b = binary.AppendVarint(b, e.ModifiedUnixMs)
	return appendBytes(b, e.Data)
}

// reader decodes the encoding above; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrBadCommand}, args...)...)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("missing %s", what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes returns a copy of the next length-prefixed field.
func (r *reader) bytes(what string) []byte {
	if p := r.view(what); p != nil {
		return bytes.Clone(p)
	}
	return nil
}

// view reads a length-prefixed field without copying it (nil on error).
func (r *reader) view(what string) []byte {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("%s length %d exceeds the %d bytes left", what, n, len(r.b))
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) string(what string) string { return string(r.view(what)) }

// count reads an element count and checks it against the bytes left, each
// element taking at least minSize bytes.
func (r *reader) count(what string, minSize int) int {
	n := r.uvarint(what)
	if r.err == nil && n > uint64(len(r.b)/minSize) {
		r.fail("%s %d exceeds what %d bytes can hold", what, n, len(r.b))
		return 0
	}
	return int(n)
}

func (r *reader) envelope() *dstate.StoredEnvelope {
	e := &dstate.StoredEnvelope{}
	e.State = r.string("state name")
	e.Node = dstate.NodeID(r.string("node id"))
	e.Generation.Incarnation = r.uvarint("incarnation")
	e.Generation.Age = r.uvarint("age")
	v := r.uvarint("storage version")
	if v > 1<<32-1 {
		r.fail("storage version %d overflows uint32", v)
	}
	e.StorageVersion = uint32(v)
	e.CreatedUnixMs = r.varint("created")
	e.ModifiedUnixMs = r.varint("modified")
	e.Data = r.bytes("data")
	if r.err != nil {
		return nil
	}
	return e
}

// minEnvelopeSize is the smallest encoded envelope (all fields empty/zero).
const minEnvelopeSize = 8

// Command format, the payload of every raft log entry this package writes:
//
//	byte    cmdVersion (1)
//	byte    op (opSave)
//	uvarint count
//	count × envelope
const (
	cmdVersion byte = 1
	opSave     byte = 1
)

func encodeSaveCommand(envs []*dstate.StoredEnvelope) []byte {
	size := 16
	for _, e := range envs {
		size += len(e.Data) + len(e.State) + len(e.Node) + 48
	}
	b := make([]byte, 0, size)
	b = append(b, cmdVersion, opSave)
	b = binary.AppendUvarint(b, uint64(len(envs)))
	for _, e := range envs {
		b = appendEnvelope(b, e)
	}
	return b
}

func decodeSaveCommand(data []byte) ([]*dstate.StoredEnvelope, error) {
	r := &reader{b: data}
	n, err := r.saveHeader()
	if err != nil {
		return nil, err
	}
	envs := make([]*dstate.StoredEnvelope, 0, n)
	for i := 0; i < n && r.err == nil; i++ {
		envs = append(envs, r.envelope())
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	return envs, nil
}

// saveHeader reads a save command's version, op and envelope count.
func (r *reader) saveHeader() (int, error) {
	if v := r.byte("command version"); r.err == nil && v != cmdVersion {
		return 0, fmt.Errorf("%w: command version %d, want %d", ErrBadCommand, v, cmdVersion)
	}
	if op := r.byte("op"); r.err == nil && op != opSave {
		return 0, fmt.Errorf("%w: unknown op %d", ErrBadCommand, op)
	}
	n := r.count("envelope count", minEnvelopeSize)
	return n, r.err
}

// saveCommandCount returns the number of envelopes of a save command
// without decoding them.
func saveCommandCount(data []byte) (int, error) {
	return (&reader{b: data}).saveHeader()
}
