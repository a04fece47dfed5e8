package gosched_test

import (
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/gosched"
)

// newBenchRuntime returns a runtime with default settings (real clock).
func newBenchRuntime(b *testing.B) *gosched.Runtime {
	b.Helper()
	rt, err := gosched.New(gosched.Config{Logger: discardLogger()})
	require.NoError(b, err)
	b.Cleanup(rt.Close)
	return rt
}

// sendSpin sends msg, yielding while the mailbox is full.
func sendSpin(b *testing.B, a *gosched.Actor, msg any) {
	for {
		err := a.Send(msg)
		if err == nil {
			return
		}
		if !errors.Is(err, dstate.ErrMailboxFull) {
			b.Fatal(err)
		}
		runtime.Gosched()
	}
}

// BenchmarkSendOneActor measures throughput from one sender through one
// actor with the default mailbox, until the actor has handled everything.
func BenchmarkSendOneActor(b *testing.B) {
	rt := newBenchRuntime(b)
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
	start := time.Now()
	for range n {
		sendSpin(b, a, msg)
	}
	<-done
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msg/s")
}

// BenchmarkSend1000Actors measures throughput from one sender spreading
// messages round-robin over 1000 actors, until all are handled.
func BenchmarkSend1000Actors(b *testing.B) {
	const actors = 1000
	rt := newBenchRuntime(b)
	n := b.N
	var wg sync.WaitGroup
	refs := make([]*gosched.Actor, actors)
	for i := range refs {
		want := n / actors
		if i < n%actors {
			want++
		}
		wg.Add(1)
		if want == 0 {
			wg.Done()
		}
		count := 0
		a, err := rt.SpawnActor(strconv.Itoa(i), func(any) {
			if count++; count == want {
				wg.Done()
			}
		})
		require.NoError(b, err)
		refs[i] = a
	}
	var msg any = 1
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		sendSpin(b, refs[i%actors], msg)
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msg/s")
}

// BenchmarkSpawn measures spawning an actor and stopping it again.
func BenchmarkSpawn(b *testing.B) {
	rt := newBenchRuntime(b)
	names := make([]string, 1024)
	for i := range names {
		names[i] = "actor-" + strconv.Itoa(i)
	}
	handler := func(any) {}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a, err := rt.SpawnActor(names[i%len(names)], handler)
		if err != nil {
			b.Fatal(err)
		}
		a.Stop()
		i++
	}
}
