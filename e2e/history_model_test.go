package e2e

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// TestRegisterModel checks the checker's model on small hand-made
// histories, including a write of unknown outcome.
func TestRegisterModel(t *testing.T) {
	w := func(c int, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: regInput{Write: true, Reg: "n1", Value: v}, Call: call, Output: regOutput{}, Return: ret}
	}
	r := func(c int, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: c, Input: regInput{Reg: "n1"}, Call: call, Output: regOutput{Value: v}, Return: ret}
	}
	tests := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"read after write", []porcupine.Operation{w(0, "a", 0, 10), r(1, "a", 20, 30)}, porcupine.Ok},
		{"initial read", []porcupine.Operation{r(1, "", 0, 5), w(0, "a", 10, 20)}, porcupine.Ok},
		{"stale read", []porcupine.Operation{w(0, "a", 0, 10), w(0, "b", 20, 30), r(1, "a", 40, 50)}, porcupine.Illegal},
		{"unknown write seen late", []porcupine.Operation{w(0, "a", 0, math.MaxInt64), r(1, "", 10, 20), r(1, "a", 30, 40)}, porcupine.Ok},
		{"unknown write never seen", []porcupine.Operation{w(0, "a", 0, math.MaxInt64), r(1, "", 10, 20), w(0, "b", 30, 40), r(1, "b", 50, 60)}, porcupine.Ok},
		{"unknown write cannot go back", []porcupine.Operation{w(0, "a", 0, math.MaxInt64), r(1, "a", 10, 20), r(1, "", 30, 40)}, porcupine.Illegal},
		{"acknowledged write lost", []porcupine.Operation{w(0, "a", 0, 10), r(1, "", 20, 30)}, porcupine.Illegal},
		{"value no write produced", []porcupine.Operation{w(0, "a", 0, 10), w(0, "b", 20, math.MaxInt64), r(1, "c", 30, 40)}, porcupine.Illegal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(registerModel, tt.ops, 0); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestWriteLogCheck feeds the final-value model hand-made write logs: it
// accepts every value a write could have produced, unknown outcomes
// included, and rejects a lost acknowledged write and a value no write
// produced.
func TestWriteLogCheck(t *testing.T) {
	type wr struct {
		v string
		o outcome
	}
	tests := []struct {
		name    string
		writes  []wr
		got     string
		wantErr string // "" when got must be accepted
	}{
		{"last acknowledged", []wr{{"a", acked}, {"b", acked}}, "b", ""},
		{"never written, absent", nil, "", ""},
		{"only refused writes, absent", []wr{{"a", notApplied}}, "", ""},
		{"last write unknown, not applied", []wr{{"a", acked}, {"b", unknown}}, "a", ""},
		{"last write unknown, applied", []wr{{"a", acked}, {"b", unknown}}, "b", ""},
		{"unknown write applied after a later acknowledged one", []wr{{"a", unknown}, {"b", acked}}, "a", ""},
		{"unknown write never acknowledged, absent", []wr{{"a", unknown}}, "", ""},
		{"lost acknowledged write: older value", []wr{{"a", acked}, {"b", acked}}, "a", `acknowledged write "b" is lost`},
		{"lost acknowledged write: older value behind an unknown one", []wr{{"a", acked}, {"b", acked}, {"c", unknown}}, "a", `acknowledged write "b" is lost`},
		{"lost acknowledged write: absent", []wr{{"a", acked}, {"b", unknown}}, "", `acknowledged write "a" is lost`},
		{"value no write produced", []wr{{"a", acked}, {"b", unknown}}, "z", "no write could have produced it"},
		{"value of a refused write", []wr{{"a", acked}, {"b", notApplied}}, "b", "no write could have produced it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWriteLog()
			for _, x := range tt.writes {
				w.record("n1/k0", x.v, x.o)
			}
			err := w.check("n1/k0", tt.got)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err, "possible values %q", w.possible("n1/k0"))
			require.Contains(t, err.Error(), tt.wantErr)
			require.Contains(t, err.Error(), "n1/k0")
		})
	}
}
