package e2e

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := porcupine.CheckOperationsTimeout(registerModel, tt.ops, 0); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
