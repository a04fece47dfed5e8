package gosched_test

import (
	"fmt"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
	"github.com/dstate-go/dstate/pkg/gosched"
)

// Example spawns an actor, sends it a message directly and one through a
// timer on a dstatetest.TestClock, then closes the runtime.
func Example() {
	clock := dstatetest.NewTestClockAtTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	rt, err := gosched.New(gosched.Config{Clock: clock})
	if err != nil {
		fmt.Println(err)
		return
	}

	done := make(chan struct{})
	greeter, err := rt.Spawn("greeter", func(msg any) {
		fmt.Println("greeter got", msg)
		if msg == "bye" {
			close(done)
		}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := greeter.Send("hello"); err != nil {
		fmt.Println(err)
	}
	rt.SendAfter(greeter, time.Second, "bye")
	clock.Advance(time.Second) // the timer fires inside Advance
	<-done

	rt.Close() // waits for the actor's goroutine
	fmt.Println("processed:", rt.Stats().MessagesProcessed)
	fmt.Println("send after close:", greeter.Send("late"))
	// Output:
	// greeter got hello
	// greeter got bye
	// processed: 2
	// send after close: dstate: actor stopped: actor "greeter"
}
