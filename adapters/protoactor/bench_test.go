package protoactor_test

import (
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/adapters/protoactor"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// BenchmarkSendOneActor measures throughput from one sender through one
// actor with the default mailbox, until the actor has handled everything:
// the same measure as pkg/gosched's benchmark of that name.
func BenchmarkSendOneActor(b *testing.B) {
	rt, err := protoactor.New(protoactor.Options{Logger: discardLogger()})
	require.NoError(b, err)
	b.Cleanup(rt.Close)
	n := b.N
	count := 0
	done := make(chan struct{})
	a, err := rt.SpawnActor("sink", func(any) {
		if count++; count == n {
			close(done)
		}
	})
	require.NoError(b, err)
	var msg any = 1
	b.ReportAllocs()
	b.ResetTimer()
	for range n {
		for {
			err := a.Send(msg)
			if err == nil {
				break
			}
			if !errors.Is(err, dstate.ErrMailboxFull) {
				b.Fatal(err)
			}
			runtime.Gosched()
		}
	}
	<-done
}

// BenchmarkSpawn measures spawning and stopping one actor.
func BenchmarkSpawn(b *testing.B) {
	rt, err := protoactor.New(protoactor.Options{Logger: discardLogger()})
	require.NoError(b, err)
	b.Cleanup(rt.Close)
	b.ReportAllocs()
	for b.Loop() {
		a, err := rt.SpawnActor("a", func(any) {})
		if err != nil {
			b.Fatal(err)
		}
		a.Stop()
	}
}
