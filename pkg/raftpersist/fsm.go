package raftpersist

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/hashicorp/raft"
)

// fsm is the replicated state machine: the last saved envelope per (state,
// node). Raft calls Apply, Snapshot and Restore from its FSM goroutine;
// readers (LoadEnvelope, LoadAllEnvelopes) take the read lock from any
// goroutine.
//
// Apply is deterministic: a save is accepted when its generation is newer
// than the stored one, or when it is byte-for-byte the stored save (a
// retried save); otherwise it is fenced and the stored envelope is kept.
type fsm struct {
	mu      sync.RWMutex
	data    map[fsmKey]*dstate.StoredEnvelope
	applied uint64        // index of the last command applied (or restored)
	advance chan struct{} // closed and replaced whenever applied moves

	restores atomic.Int64 // snapshot restores, for tests and stats
}

type fsmKey struct {
	state string
	node  dstate.NodeID
}

// saveResult is the outcome of one envelope of a save command.
type saveResult struct {
	fenced bool
	stored dstate.Generation // the stored generation when fenced
}

// applyResponse is what Apply returns for a command; err is set when the
// command could not be decoded (no envelope was applied).
type applyResponse struct {
	results []saveResult
	err     error
}

var _ raft.FSM = (*fsm)(nil)

func newFSM() *fsm {
	return &fsm{data: map[fsmKey]*dstate.StoredEnvelope{}, advance: make(chan struct{})}
}

// Apply applies one committed command.
func (f *fsm) Apply(l *raft.Log) any {
	envs, err := decodeSaveCommand(l.Data)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setApplied(l.Index)
	if err != nil {
		return &applyResponse{err: err}
	}
	res := make([]saveResult, len(envs))
	for i, e := range envs {
		k := fsmKey{e.State, e.Node}
		cur := f.data[k]
		switch {
		case cur == nil || cur.Generation.Less(e.Generation):
			f.data[k] = e
		case sameEnvelope(cur, e):
			// A retried save that already committed: accept again.
		default:
			res[i] = saveResult{fenced: true, stored: cur.Generation}
		}
	}
	return &applyResponse{results: res}
}

// setApplied records the applied index and wakes waiters; f.mu is held.
func (f *fsm) setApplied(idx uint64) {
	f.applied = idx
	close(f.advance)
	f.advance = make(chan struct{})
}

// appliedIndex returns the last applied command index and a channel closed
// when it next moves.
func (f *fsm) appliedIndex() (uint64, <-chan struct{}) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied, f.advance
}

func (f *fsm) get(state string, node dstate.NodeID) *dstate.StoredEnvelope {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if e := f.data[fsmKey{state, node}]; e != nil {
		return cloneEnvelope(e)
	}
	return nil
}

// all returns copies of every envelope of state, sorted by node.
func (f *fsm) all(state string) []*dstate.StoredEnvelope {
	f.mu.RLock()
	var out []*dstate.StoredEnvelope
	for k, e := range f.data {
		if k.state == state {
			out = append(out, cloneEnvelope(e))
		}
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b *dstate.StoredEnvelope) int { return cmp.Compare(a.Node, b.Node) })
	return out
}

// len returns the number of stored envelopes.
func (f *fsm) len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.data)
}

// Snapshot captures the current envelopes. Envelopes are never mutated
// once stored (Apply replaces them), so a shallow copy of the map suffices.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	envs := make([]*dstate.StoredEnvelope, 0, len(f.data))
	for _, e := range f.data {
		envs = append(envs, e)
	}
	return &fsmSnapshot{applied: f.applied, envs: envs}, nil
}

// Restore replaces the state with a snapshot.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	applied, data, err := readSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data = data
	f.setApplied(applied)
	f.restores.Add(1)
	return nil
}

// Snapshot format:
//
//	[4]byte  "DSRP"
//	byte     snapshotVersion (1)
//	uvarint  applied index
//	uvarint  count
//	count × (uvarint length, envelope), sorted by (state, node)
const snapshotVersion byte = 1

var snapshotMagic = []byte("DSRP")

type fsmSnapshot struct {
	applied uint64
	envs    []*dstate.StoredEnvelope
}

// Persist writes the snapshot to sink.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	slices.SortFunc(s.envs, func(a, b *dstate.StoredEnvelope) int {
		return cmp.Or(cmp.Compare(a.State, b.State), cmp.Compare(a.Node, b.Node))
	})
	w := bufio.NewWriterSize(sink, 64<<10)
	buf := append([]byte(nil), snapshotMagic...)
	buf = append(buf, snapshotVersion)
	buf = binary.AppendUvarint(buf, s.applied)
	buf = binary.AppendUvarint(buf, uint64(len(s.envs)))
	var rec []byte
	for _, e := range s.envs {
		if _, err := w.Write(buf); err != nil {
			_ = sink.Cancel()
			return fmt.Errorf("raftpersist: write snapshot: %w", err)
		}
		rec = appendEnvelope(rec[:0], e)
		buf = binary.AppendUvarint(buf[:0], uint64(len(rec)))
		buf = append(buf, rec...)
	}
	if _, err := w.Write(buf); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftpersist: write snapshot: %w", err)
	}
	if err := w.Flush(); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftpersist: write snapshot: %w", err)
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds only immutable envelopes.
func (s *fsmSnapshot) Release() {}

// recordChunk is the most readRecord grows its buffer by at a time, and
// recordStart the least.
const (
	recordChunk = 64 << 10
	recordStart = 4 << 10
)

// readRecord reads size bytes into buf's storage. The buffer grows as the
// bytes arrive, by what it already holds (at least recordStart, at most
// recordChunk at a time), so a corrupt length cannot make it allocate more
// than a few times what the stream actually holds.
func readRecord(r io.Reader, buf []byte, size uint64) ([]byte, error) {
	buf = buf[:0]
	for uint64(len(buf)) < size {
		step := uint64(min(max(len(buf), recordStart), recordChunk))
		n, off := int(min(size-uint64(len(buf)), step)), len(buf)
		buf = slices.Grow(buf, n)[:off+n]
		if _, err := io.ReadFull(r, buf[off:]); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

func readSnapshot(r io.Reader) (uint64, map[fsmKey]*dstate.StoredEnvelope, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	bad := func(format string, args ...any) error {
		return fmt.Errorf("raftpersist: restore snapshot: %w: "+format, append([]any{ErrBadCommand}, args...)...)
	}
	head := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, head); err != nil {
		return 0, nil, bad("header: %v", err)
	}
	if string(head[:4]) != string(snapshotMagic) {
		return 0, nil, bad("bad magic %q", head[:4])
	}
	if head[4] != snapshotVersion {
		return 0, nil, bad("version %d, want %d", head[4], snapshotVersion)
	}
	applied, err := binary.ReadUvarint(br)
	if err != nil {
		return 0, nil, bad("applied index: %v", err)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return 0, nil, bad("count: %v", err)
	}
	// n is not trusted for allocation: every record takes at least
	// minEnvelopeSize+1 bytes of the stream, which may not hold them; the
	// map grows with the records that do arrive.
	data := make(map[fsmKey]*dstate.StoredEnvelope, min(n, 64))
	var rec []byte
	for i := uint64(0); i < n; i++ {
		size, err := binary.ReadUvarint(br)
		if err != nil {
			return 0, nil, bad("record %d length: %v", i, err)
		}
		if size > 1<<31 {
			return 0, nil, bad("record %d length %d too large", i, size)
		}
		if rec, err = readRecord(br, rec, size); err != nil {
			return 0, nil, bad("record %d: %v", i, err)
		}
		rd := &reader{b: rec}
		e := rd.envelope()
		if rd.err == nil && len(rd.b) != 0 {
			rd.fail("record %d: %d trailing bytes", i, len(rd.b))
		}
		if rd.err != nil {
			return 0, nil, fmt.Errorf("raftpersist: restore snapshot: %w", rd.err)
		}
		data[fsmKey{e.State, e.Node}] = e
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return 0, nil, bad("trailing data after %d records", n)
	}
	return applied, data, nil
}
