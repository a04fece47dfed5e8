package e2e

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// The durable history: every node's durable-kv key "r" is one register,
// written only through that node by this test's client and read from
// linearizable dumps (GET /v1/states/durable-kv?consistent=true).

// regInput is a register operation: a write of Value, or a read.
type regInput struct {
	Write bool
	Reg   string // the owning node
	Value string
}

// regOutput is what a read returned ("" when nothing was written).
type regOutput struct{ Value string }

// registerModel is a per-node register; unique write values make every
// read attributable to one write.
var registerModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			k := op.Input.(regInput).Reg
			if _, ok := by[k]; !ok {
				order = append(order, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.Write {
			return true, in.Value
		}
		return output.(regOutput).Value == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.Write {
			return fmt.Sprintf("put(%s, %q)", in.Reg, in.Value)
		}
		return fmt.Sprintf("get(%s) → %q", in.Reg, output.(regOutput).Value)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
}

// history records operations with times relative to its start.
type history struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
	// counts by outcome, for the log
	ok, unknown, failed, reads int
}

func newHistory() *history { return &history{start: time.Now()} }

func (h *history) now() int64 { return time.Since(h.start).Nanoseconds() }

// write records a write; unknown outcomes never return (they may take
// effect at any time after their call).
func (h *history) write(client int, reg, value string, call int64, acked bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ret := h.now()
	if acked {
		h.ok++
	} else {
		ret = math.MaxInt64
		h.unknown++
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: regInput{Write: true, Reg: reg, Value: value}, Call: call, Output: regOutput{}, Return: ret})
}

// notApplied counts a write that certainly did not happen (not recorded).
func (h *history) notApplied() {
	h.mu.Lock()
	h.failed++
	h.mu.Unlock()
}

// read records the registers as one successful linearizable dump saw them.
func (h *history) read(client int, values map[string]string, regs []string, call int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ret := h.now()
	h.reads++
	for _, r := range regs {
		h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: regInput{Reg: r}, Call: call, Output: regOutput{Value: values[r]}, Return: ret})
	}
}

// acked returns how many writes were acknowledged.
func (h *history) acked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ok
}

// readCount returns how many linearizable dumps were recorded.
func (h *history) readCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reads
}

func (h *history) snapshot() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}

func (h *history) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("%d operations: %d writes acknowledged, %d with unknown outcome, %d certainly not applied; %d linearizable dumps",
		len(h.ops), h.ok, h.unknown, h.failed, h.reads)
}

// outcome is what a client learned of one write.
type outcome int

const (
	// acked: the write was acknowledged.
	acked outcome = iota
	// unknown: the call failed in a way that leaves the write possibly
	// applied (a timeout, a lost connection, an error after sending).
	unknown
	// notApplied: the write certainly did not happen (the connection was
	// refused, or the state was not registered yet).
	notApplied
)

// keyWrite is one attempted write of a key.
type keyWrite struct {
	value   string
	outcome outcome
}

// writeLog records the writes of keys that each have one sequential
// writer, and checks a key's final value against the writes that could
// have produced it.
type writeLog struct {
	mu   sync.Mutex
	keys map[string][]keyWrite
}

func newWriteLog() *writeLog { return &writeLog{keys: map[string][]keyWrite{}} }

// record appends a write of key (values are unique per key).
func (w *writeLog) record(key, value string, o outcome) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.keys[key] = append(w.keys[key], keyWrite{value, o})
}

// keyNames returns every key written at least once, sorted.
func (w *writeLog) keyNames() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.keys))
	for k := range w.keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// counts returns how many writes of the keys starting with prefix had
// each outcome.
func (w *writeLog) counts(prefix string) (ok, unk, not int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, ws := range w.keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		for _, x := range ws {
			switch x.outcome {
			case acked:
				ok++
			case unknown:
				unk++
			default:
				not++
			}
		}
	}
	return ok, unk, not
}

// possible returns the values key may hold once every write has ended:
// the value of its last acknowledged write ("" when none was
// acknowledged: the key may be absent), and the value of every write of
// unknown outcome. A write of unknown outcome may take effect at any time
// after its call, even after a later acknowledged write of the same
// writer (a request the agent received before it was paused and handles
// after it resumes); an acknowledged write takes effect before its
// acknowledgement, so one acknowledged before the last one can no longer
// be the value.
func (w *writeLog) possible(key string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	last := ""
	var out []string
	for _, x := range w.keys[key] {
		switch x.outcome {
		case acked:
			last = x.value
		case unknown:
			out = append(out, x.value)
		}
	}
	return append([]string{last}, out...)
}

// check returns an error naming key, got and the values it could have
// held when got is none of them: an acknowledged write lost, or a value
// no write could have produced.
func (w *writeLog) check(key, got string) error {
	p := w.possible(key)
	if slices.Contains(p, got) {
		return nil
	}
	w.mu.Lock()
	var lastAcked string
	for _, x := range w.keys[key] {
		if x.outcome == acked {
			lastAcked = x.value
		}
	}
	wrote := slices.ContainsFunc(w.keys[key], func(x keyWrite) bool { return x.value == got && x.outcome == acked })
	w.mu.Unlock()
	why := "no write could have produced it"
	switch {
	case wrote:
		why = fmt.Sprintf("an older acknowledged write: the acknowledged write %q is lost", lastAcked)
	case got == "" && lastAcked != "":
		why = fmt.Sprintf("the key is absent: the acknowledged write %q is lost", lastAcked)
	}
	return fmt.Errorf("%s = %q, %s (possible values: %q)", key, got, why, p)
}
