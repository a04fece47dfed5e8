package dstatetest

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"math/rand/v2"
	"slices"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// DefaultMaxReorderTicks is the largest extra delay a reordered message gets
// when Faults.MaxReorderTicks is zero.
const DefaultMaxReorderTicks = 3

// Faults are the network faults a [SimCluster] injects. Every decision is
// drawn from the cluster's seeded generator, per message and per target, so
// a run replays exactly from its seed. The zero value is a perfect network
// (one tick of latency). Faults compose: a message may be duplicated, and
// each copy delayed, reordered and corrupted independently.
type Faults struct {
	// Drop is the probability that a message to one target is lost.
	Drop float64
	// Duplicate is the probability that a message is delivered twice.
	Duplicate float64
	// Reorder is the probability that a message gets a random extra delay
	// of 1..MaxReorderTicks ticks, so later messages overtake it.
	Reorder float64
	// MaxReorderTicks bounds the reorder delay (DefaultMaxReorderTicks
	// when zero).
	MaxReorderTicks int
	// Corrupt is the probability that one random bit of a message is
	// flipped. The receiver hands the bytes to dstate.DecodeWire; what
	// still decodes is caught by the frame checksum a real transport has
	// (counted in SimStats.IntegrityRejected) unless CorruptUnchecked.
	Corrupt float64
	// CorruptUnchecked delivers corrupted messages that still decode to the
	// engine, exercising its decode-failure paths. A flipped bit can then
	// forge a generation or a value, so convergence is not guaranteed.
	CorruptUnchecked bool
	// Delay is a fixed number of extra ticks on every message.
	Delay int
}

// Validate reports the first invalid field; it changes nothing.
func (f Faults) Validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"Drop", f.Drop}, {"Duplicate", f.Duplicate}, {"Reorder", f.Reorder}, {"Corrupt", f.Corrupt}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("dstatetest: Faults.%s %v is not a probability in [0, 1]", p.name, p.v)
		}
	}
	switch {
	case f.MaxReorderTicks < 0:
		return fmt.Errorf("dstatetest: Faults.MaxReorderTicks %d is negative", f.MaxReorderTicks)
	case f.Delay < 0:
		return fmt.Errorf("dstatetest: Faults.Delay %d is negative", f.Delay)
	}
	return nil
}

// String describes the faults compactly, e.g. "drop=0.3 dup=0.1 delay=2".
func (f Faults) String() string {
	s := fmt.Sprintf("drop=%g dup=%g reorder=%g corrupt=%g delay=%d", f.Drop, f.Duplicate, f.Reorder, f.Corrupt, f.Delay)
	if f.CorruptUnchecked {
		s += " unchecked"
	}
	return s
}

// SimMessage is one message the simulated network is about to carry to
// one target, as a [SimInterceptor] sees it.
type SimMessage struct {
	From, To dstate.NodeID
	Kind     dstate.MessageKind
	// State is the message's state name (empty for a change feed or a
	// digest).
	State string
	// Tick is the tick it is sent at.
	Tick int64
}

// SimFate is what a [SimInterceptor] decides for one message. The zero
// value lets it through to the cluster-wide Faults.
type SimFate struct {
	// Drop loses the message (counted in SimStats.Intercepted).
	Drop bool
	// Delay adds this many ticks to the message's latency.
	Delay int
	// NoFaults spares the message the cluster-wide Faults (drop,
	// duplicate, reorder, corrupt, delay).
	NoFaults bool
}

// SimInterceptor decides, per message and per target, what the network
// does with it before the cluster-wide Faults apply: the fault hook of one
// link, one message kind or one state. It is called in send order on the
// goroutine that drives the cluster, once per target of a broadcast, and
// not for Inject's messages; it must not call the cluster. A deterministic
// interceptor keeps the run a function of its seed.
type SimInterceptor func(SimMessage) SimFate

// SimStats counts what the simulated network did with the messages. A
// message broadcast to n peers counts n times.
type SimStats struct {
	Sent              uint64 // copies put in flight (duplicates included)
	Delivered         uint64 // messages decoded and handed to an engine
	Dropped           uint64 // lost to the drop rate
	Duplicated        uint64 // messages that got a second copy
	Reordered         uint64 // copies that got a random extra delay
	Corrupted         uint64 // copies with a flipped bit
	DecodeErrors      uint64 // delivered copies that dstate.DecodeWire rejected
	IntegrityRejected uint64 // corrupted copies that decoded but failed the frame checksum
	Blocked           uint64 // lost to a partition (when sent or when due)
	Lost              uint64 // addressed to a node that was down or gone
	Purged            uint64 // taken out of flight by a crash or a leave
	Intercepted       uint64 // dropped by the SimInterceptor
	InRuns            uint64 // delivered in runs of two or more (SimConfig.DeltaRuns)
}

// link is one direction between two nodes.
type link struct{ from, to dstate.NodeID }

// flight is one message copy on the wire.
type flight struct {
	due      int64
	seq      uint64
	from, to dstate.NodeID
	data     []byte
	sum      uint32 // checksum of the bytes as sent
	checked  bool   // the receiver verifies sum
	injected bool
}

// timer is a delayed broadcast (ActionScheduleDelayed).
type timer struct {
	due  int64
	seq  uint64
	node dstate.NodeID
	data []byte
	sum  uint32
}

// simNet is the in-memory network and event queue of a SimCluster: it owns
// the tick counter, the seeded generator, the messages in flight, the
// delayed broadcasts, the partitions and the trace. It is not generic, so
// it knows nothing of engines.
type simNet struct {
	tick      int64
	seq       uint64
	rng       *rand.Rand
	faults    Faults
	intercept SimInterceptor
	blocked   map[link]struct{}
	flights   []flight
	timers    []timer
	stats     SimStats
	keep      bool // keep trace lines
	trace     []string
	hash      uint64
	logf      func(format string, args ...any)
}

func newSimNet(seed uint64, keepTrace bool, logf func(string, ...any)) *simNet {
	h := fnv.New64a()
	return &simNet{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		blocked: make(map[link]struct{}),
		keep:    keepTrace,
		hash:    h.Sum64(),
		logf:    logf,
	}
}

// mix folds b into the running FNV-1a trace hash.
func (n *simNet) mix(b []byte) {
	const prime = 1099511628211
	h := n.hash
	for _, c := range b {
		h ^= uint64(c)
		h *= prime
	}
	n.hash = h
}

func (n *simNet) mixString(s string) {
	const prime = 1099511628211
	h := n.hash
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= prime
	}
	n.hash = h
}

// event records a cluster event (crash, join, partition...) in the trace
// and the hash.
func (n *simNet) event(format string, args ...any) {
	line := fmt.Sprintf("%d %s", n.tick, fmt.Sprintf(format, args...))
	n.mixString(line)
	n.mix([]byte{'\n'})
	if n.keep {
		n.trace = append(n.trace, line)
	}
	if n.logf != nil {
		n.logf("%s", line)
	}
}

// delivered records a delivered message in the hash (always) and the trace
// (when kept).
func (n *simNet) delivered(f *flight, m *dstate.WireMessage) {
	var hdr [8]byte
	binary.LittleEndian.PutUint64(hdr[:], uint64(n.tick))
	n.mix(hdr[:])
	n.mixString(string(f.from))
	n.mix([]byte{'>'})
	n.mixString(string(f.to))
	n.mix([]byte{':'})
	n.mix(f.data)
	if n.keep {
		n.trace = append(n.trace, fmt.Sprintf("%d %s->%s %s", n.tick, f.from, f.to, m.String()))
	}
}

// note adds a trace line that is not part of the hash (fault outcomes).
func (n *simNet) note(format string, args ...any) {
	if n.keep {
		n.trace = append(n.trace, fmt.Sprintf("%d %s", n.tick, fmt.Sprintf(format, args...)))
	}
}

func (n *simNet) isBlocked(from, to dstate.NodeID) bool {
	if len(n.blocked) == 0 {
		return false
	}
	_, ok := n.blocked[link{from, to}]
	return ok
}

func (n *simNet) chance(p float64) bool { return p > 0 && n.rng.Float64() < p }

// transmit puts one message to one target on the wire, applying the faults.
func (n *simNet) transmit(from, to dstate.NodeID, data []byte, sum uint32) {
	if n.isBlocked(from, to) {
		n.stats.Blocked++
		n.note("%s-x>%s blocked", from, to)
		return
	}
	f := &n.faults
	extra := 0
	if n.intercept != nil {
		fate := n.intercept(n.message(from, to, data))
		if fate.Drop {
			n.stats.Intercepted++
			n.note("%s-x>%s intercepted", from, to)
			return
		}
		extra = max(fate.Delay, 0)
		if fate.NoFaults {
			f = &Faults{}
		}
	}
	if n.chance(f.Drop) {
		n.stats.Dropped++
		n.note("%s-x>%s dropped", from, to)
		return
	}
	copies := 1
	if n.chance(f.Duplicate) {
		copies = 2
		n.stats.Duplicated++
	}
	for range copies {
		due := n.tick + 1 + int64(f.Delay) + int64(extra)
		if n.chance(f.Reorder) {
			maxR := f.MaxReorderTicks
			if maxR <= 0 {
				maxR = DefaultMaxReorderTicks
			}
			due += 1 + int64(n.rng.IntN(maxR))
			n.stats.Reordered++
		}
		d := data
		if n.chance(f.Corrupt) && len(data) > 0 {
			d = slices.Clone(data)
			bit := n.rng.IntN(len(d) * 8)
			d[bit/8] ^= 1 << (bit % 8)
			n.stats.Corrupted++
		}
		n.seq++
		n.flights = append(n.flights, flight{due: due, seq: n.seq, from: from, to: to, data: d, sum: sum, checked: !f.CorruptUnchecked})
		n.stats.Sent++
	}
}

// message describes a frame for the interceptor; a frame that does not
// decode has Kind 0.
func (n *simNet) message(from, to dstate.NodeID, data []byte) SimMessage {
	m := SimMessage{From: from, To: to, Tick: n.tick}
	if w, err := dstate.DecodeWire(data); err == nil {
		m.Kind, m.State = w.Kind, w.State
	}
	return m
}

// inject puts a message on the wire for the next tick, bypassing faults and
// partitions.
func (n *simNet) inject(from, to dstate.NodeID, data []byte) {
	n.seq++
	n.flights = append(n.flights, flight{due: n.tick + 1, seq: n.seq, from: from, to: to, data: data, sum: checksum(data), checked: true, injected: true})
	n.stats.Sent++
}

// takeDue removes and returns, in (due, seq) order, the messages due now.
func (n *simNet) takeDue() []flight {
	var due []flight
	keep := n.flights[:0]
	for _, f := range n.flights {
		if f.due <= n.tick {
			due = append(due, f)
		} else {
			keep = append(keep, f)
		}
	}
	clear(n.flights[len(keep):])
	n.flights = keep
	slices.SortFunc(due, func(a, b flight) int { return cmp.Or(cmp.Compare(a.due, b.due), cmp.Compare(a.seq, b.seq)) })
	return due
}

// schedule adds a delayed broadcast.
func (n *simNet) schedule(node dstate.NodeID, after int64, data []byte, sum uint32) {
	n.seq++
	n.timers = append(n.timers, timer{due: n.tick + after, seq: n.seq, node: node, data: data, sum: sum})
}

// takeTimers removes and returns, in (due, seq) order, the timers due now.
func (n *simNet) takeTimers() []timer {
	var due []timer
	keep := n.timers[:0]
	for _, t := range n.timers {
		if t.due <= n.tick {
			due = append(due, t)
		} else {
			keep = append(keep, t)
		}
	}
	clear(n.timers[len(keep):])
	n.timers = keep
	slices.SortFunc(due, func(a, b timer) int { return cmp.Or(cmp.Compare(a.due, b.due), cmp.Compare(a.seq, b.seq)) })
	return due
}

// purge takes out of flight the messages to node (and, with from, those
// from it) and cancels its timers.
func (n *simNet) purge(node dstate.NodeID, from bool) {
	keep := n.flights[:0]
	for _, f := range n.flights {
		if f.to == node || (from && f.from == node) {
			n.stats.Purged++
			continue
		}
		keep = append(keep, f)
	}
	clear(n.flights[len(keep):])
	n.flights = keep
	timers := n.timers[:0]
	for _, t := range n.timers {
		if t.node != node {
			timers = append(timers, t)
		}
	}
	clear(n.timers[len(timers):])
	n.timers = timers
}

// dropLink takes out of flight the messages from one node to another.
func (n *simNet) dropLink(from, to dstate.NodeID) {
	keep := n.flights[:0]
	for _, f := range n.flights {
		if f.from == from && f.to == to {
			n.stats.Purged++
			continue
		}
		keep = append(keep, f)
	}
	clear(n.flights[len(keep):])
	n.flights = keep
}

func (n *simNet) block(from, to []dstate.NodeID) {
	for _, a := range from {
		for _, b := range to {
			if a != b {
				n.blocked[link{a, b}] = struct{}{}
			}
		}
	}
}

func checksum(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
