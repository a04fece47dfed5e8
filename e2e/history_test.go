package e2e

import (
	"fmt"
	"math"
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
