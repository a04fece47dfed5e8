package actorkit_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/dstate-go/dstate/pkg/actorkit"
	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/dstate/dstatetest"
)

// printer is the actor type of a toy runtime: it prints what it is sent.
type printer struct {
	name    string
	stopped bool
}

func (p *printer) Name() string { return p.name }
func (p *printer) Stop()        { p.stopped = true }
func (p *printer) Send(msg any) error {
	if p.stopped {
		return &dstate.ActorSendError{Kind: dstate.ErrActorStopped, Actor: p.name}
	}
	fmt.Printf("%s got %v\n", p.name, msg)
	return nil
}

// A runtime binds the kit to its actor type once, in a Core, and then
// delegates its JoinGroup, BroadcastGroup, SendAfter, SendInterval… to the
// Core's parts.
func Example() {
	clock := dstatetest.NewTestClockAtTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	kit := actorkit.NewCore(clock, actorkit.Binding[*printer]{
		Belongs:    func(*printer) bool { return true }, // one runtime only
		Stopping:   func(p *printer) bool { return p.stopped },
		Deliver:    (*printer).Send,
		ErrForeign: errors.New("toy: actor not spawned by this runtime"),
	}, errors.New("toy: runtime closed"), errors.New("toy: duplicate actor name"))
	defer kit.Close()

	spawn := func(name string) *printer {
		p, _ := kit.Names.Add(name, func() (*printer, error) { return &printer{name: name}, nil })
		return p
	}
	bob, alice := spawn("bob"), spawn("alice")
	_ = kit.Groups.Join("team", bob)
	_ = kit.Groups.Join("team", alice)
	_ = kit.Groups.Broadcast("team", "hello") // in name order

	kit.Timers.SendInterval(alice, time.Second, "tick")
	clock.Advance(2 * time.Second)

	// When an actor stops, the runtime has the kit forget it.
	alice.Stop()
	kit.Forget(alice)
	clock.Advance(time.Second)
	fmt.Println(len(kit.Groups.Members("team")), "member left")
	_, err := kit.Names.Add("bob", nil)
	fmt.Println(err)
	// Output:
	// alice got hello
	// bob got hello
	// alice got tick
	// alice got tick
	// 1 member left
	// toy: duplicate actor name: "bob"
}
