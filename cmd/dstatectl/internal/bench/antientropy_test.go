package bench

import (
	"testing"
	"time"
)

func TestHealSmoke(t *testing.T) {
	r, err := Heal(smokeCtx(t), HealConfig{Nodes: 2, Entries: 10, Runs: 1, FullSync: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"periodic full sync: heal time (worst run)", "digest: heal time (worst run)"} {
		if v, ok := r.Get(name); !ok || v <= 0 {
			t.Errorf("%s = %v, %v; want a positive figure", name, v, ok)
		}
	}
}

func TestIdleSmoke(t *testing.T) {
	r, err := Idle(smokeCtx(t), IdleConfig{Nodes: 2, Entries: 100, Duration: 500 * time.Millisecond, FullSync: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := r.Get("periodic full sync: bytes sent per node")
	dig, ok := r.Get("digest: bytes sent per node")
	if !ok || full <= 0 {
		t.Fatalf("bytes per node: full sync %v, digest %v (%v); want figures", full, dig, ok)
	}
}
