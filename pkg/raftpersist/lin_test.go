package raftpersist

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/stretchr/testify/require"
)

// linIn is one operation on one key (a node's state): a save of (age,
// value) or a load.
type linIn struct {
	key   string
	save  bool
	age   uint64
	value string
}

// linOut is the outcome: for a save "ok", "fenced" or "unknown" (then the
// operation's return time is infinity: it may take effect at any point
// after its call, or never); for a load what was read.
type linOut struct {
	result string
	found  bool
	age    uint64
	value  string
}

// linState is what the model holds per key.
type linState struct {
	set   bool
	age   uint64
	value string
}

// linModel: a save is accepted iff it is newer than the stored one or
// identical to it (a retry), else fenced; a load returns the stored value.
var linModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(linIn).key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(linState), input.(linIn), output.(linOut)
		if !in.save {
			return out.found == st.set && out.age == st.age && out.value == st.value, st
		}
		accept := !st.set || in.age > st.age || (in.age == st.age && in.value == st.value)
		next := st
		if accept {
			next = linState{set: true, age: in.age, value: in.value}
		}
		switch out.result {
		case "ok":
			return accept, next
		case "fenced":
			return !accept, st
		default: // unknown: linearized wherever it fits
			return true, next
		}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linIn), output.(linOut)
		if in.save {
			return fmt.Sprintf("save(%s, %d, %s) -> %s", in.key, in.age, in.value, out.result)
		}
		if !out.found {
			return fmt.Sprintf("load(%s) -> none", in.key)
		}
		return fmt.Sprintf("load(%s) -> %d %s", in.key, out.age, out.value)
	},
	DescribeState: func(state any) string {
		st := state.(linState)
		if !st.set {
			return "none"
		}
		return fmt.Sprintf("%d %s", st.age, st.value)
	},
}

// TestLinearizabilityWithLeaderKill records concurrent saves and loads of
// several clients on every node of a 3-node cluster while the leader is
// killed, and checks the history with porcupine. DSTATE_LIN_OPS sets the
// number of operations (default 300).
func TestLinearizabilityWithLeaderKill(t *testing.T) {
	total := 300
	if v := os.Getenv("DSTATE_LIN_OPS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "DSTATE_LIN_OPS")
		total = n
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d operations", seed, total)
	c := newCluster(t, 3, anyOwner)
	leader := c.leader()
	const clients, keys = 6, 3
	var ages [keys]atomic.Uint64
	var issued atomic.Int64
	base := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	unknown, fenced, loads := 0, 0, 0
	killAt := int64(total / 3)
	killed := make(chan struct{})

	var wg sync.WaitGroup
	for cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(cl)))
			for seq := 0; ; seq++ {
				n := issued.Add(1)
				if n > int64(total) {
					return
				}
				if n == killAt {
					c.stop(leader)
					close(killed)
				}
				node := rng.IntN(3)
				s := c.node(node)
				for s == nil {
					node = (node + 1) % 3
					s = c.node(node)
				}
				k := rng.IntN(keys)
				in := linIn{key: fmt.Sprint("k", k)}
				p := stateOfNode(s, "lin", dstate.NodeID(in.key))
				// Some operations get a short deadline, so that saves caught in
				// the failover end with an unknown outcome.
				timeout := 2 * time.Second
				if rng.IntN(4) == 0 {
					timeout = 100 * time.Millisecond
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				op := porcupine.Operation{ClientId: cl, Input: nil}
				if rng.IntN(2) == 0 {
					in.save = true
					in.age = ages[k].Add(1)
					if rng.IntN(8) == 0 && in.age > 3 {
						in.age -= uint64(1 + rng.IntN(3)) // a stale writer
					}
					in.value = fmt.Sprintf("c%d.%d", cl, seq)
					op.Call = time.Since(base).Nanoseconds()
					err := p.Save(ctx, obj(1, in.age, in.value), nil)
					op.Return = time.Since(base).Nanoseconds()
					var out linOut
					switch {
					case err == nil:
						out.result = "ok"
					case errors.Is(err, ErrFenced) && !errors.Is(err, ErrOutcomeUnknown):
						out.result = "fenced"
					default:
						out.result = "unknown"
						op.Return = math.MaxInt64
					}
					op.Input, op.Output = in, out
					mu.Lock()
					history = append(history, op)
					switch out.result {
					case "unknown":
						unknown++
					case "fenced":
						fenced++
					}
					mu.Unlock()
				} else {
					op.Call = time.Since(base).Nanoseconds()
					got, err := p.Load(ctx)
					op.Return = time.Since(base).Nanoseconds()
					if err == nil { // a failed read has no effect: leave it out
						out := linOut{}
						if got != nil {
							out = linOut{found: true, age: got.Generation.Age, value: got.Value}
						}
						op.Input, op.Output = in, out
						mu.Lock()
						history = append(history, op)
						loads++
						mu.Unlock()
					}
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatal("the leader was never killed")
	}
	t.Logf("history: %d operations (%d loads, %d fenced saves, %d saves with unknown outcome)", len(history), loads, fenced, unknown)
	require.Greater(t, loads, total/10, "too few successful loads for a meaningful check")
	res, info := porcupine.CheckOperationsVerbose(linModel, history, time.Minute)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("raftpersist-lin-%d.html", seed))
		if err := porcupine.VisualizePath(linModel, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		t.Fatalf("history is not linearizable (result %v, seed %d)", res, seed)
	}
}

// The model must reject what the store must never do.
func TestLinModelRejectsViolations(t *testing.T) {
	save := func(call, ret int64, age uint64, v, res string) porcupine.Operation {
		return porcupine.Operation{Call: call, Return: ret, Input: linIn{key: "k", save: true, age: age, value: v}, Output: linOut{result: res}}
	}
	load := func(call, ret int64, age uint64, v string) porcupine.Operation {
		return porcupine.Operation{Call: call, Return: ret, Input: linIn{key: "k"}, Output: linOut{found: v != "", age: age, value: v}}
	}
	tests := []struct {
		name string
		h    []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"read your write", []porcupine.Operation{save(0, 1, 1, "a", "ok"), load(2, 3, 1, "a")}, porcupine.Ok},
		{"stale read", []porcupine.Operation{save(0, 1, 1, "a", "ok"), save(2, 3, 2, "b", "ok"), load(4, 5, 1, "a")}, porcupine.Illegal},
		{"lost acknowledged save", []porcupine.Operation{save(0, 1, 1, "a", "ok"), load(2, 3, 0, "")}, porcupine.Illegal},
		{"older generation acknowledged", []porcupine.Operation{save(0, 1, 5, "a", "ok"), save(2, 3, 4, "b", "ok")}, porcupine.Illegal},
		{"unknown save may apply", []porcupine.Operation{save(0, math.MaxInt64, 1, "a", "unknown"), load(2, 3, 1, "a")}, porcupine.Ok},
		{"unknown save may not apply", []porcupine.Operation{save(0, math.MaxInt64, 1, "a", "unknown"), load(2, 3, 0, "")}, porcupine.Ok},
		{"fenced save must not apply", []porcupine.Operation{save(0, 1, 5, "a", "ok"), save(2, 3, 4, "b", "fenced"), load(4, 5, 4, "b")}, porcupine.Illegal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, porcupine.CheckOperationsTimeout(linModel, tc.h, 10*time.Second))
		})
	}
}
