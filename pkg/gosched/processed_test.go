package gosched_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dstate-go/dstate/pkg/gosched"
)

// Each actor counts its own handled messages (no cache line shared by
// actors on different processors); Stats adds them up. The total neither
// loses nor double-counts an actor's messages when the actor stops, and it
// never goes down while actors stop and Stats is read concurrently.
func TestProcessedCountSurvivesStop(t *testing.T) {
	rt, _ := newRuntime(t, gosched.DefaultConfig())
	const actors, each = 8, 200
	refs := make([]*gosched.Actor, actors)
	var handled sync.WaitGroup
	handled.Add(actors * each)
	for i := range refs {
		a, err := rt.SpawnActor(fmt.Sprintf("a%d", i), func(any) { handled.Done() })
		require.NoError(t, err)
		refs[i] = a
	}
	for _, a := range refs {
		for j := range each {
			if j%2 == 0 {
				_, err := a.SendInline(j)
				require.NoError(t, err)
			} else {
				require.NoError(t, a.Send(j))
			}
		}
	}
	handled.Wait()
	require.Equal(t, uint64(actors*each), rt.Stats().MessagesProcessed)

	stop := make(chan struct{})
	var reader sync.WaitGroup
	var lowest, last uint64 = actors * each, 0
	reader.Go(func() {
		for {
			n := rt.Stats().MessagesProcessed
			lowest, last = min(lowest, n), n
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	for _, a := range refs {
		a.Stop()
		<-a.Done()
	}
	close(stop)
	reader.Wait()
	require.Equal(t, uint64(actors*each), lowest, "the total went down while actors stopped")
	require.Equal(t, uint64(actors*each), last)
	require.Equal(t, uint64(actors*each), rt.Stats().MessagesProcessed, "after every actor stopped")
}
