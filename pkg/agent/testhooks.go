package agent

import (
	"errors"
	"io"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// TestHooks are switches for tests of agents and of clusters of agents:
// fault injection, a generated load, another kv wire version. They are not
// part of [Config]: no config file key or environment variable sets them,
// and an operator has no use for them. Pass them to [Start] with
// [WithTestHooks]; `dstatectl agent` sets them from its hidden --test-*
// flags, which the end-to-end tests use.
type TestHooks struct {
	// FaultDrop lists peers whose outbound state-transport frames are
	// dropped from the start: a partition switch (faults.go).
	FaultDrop []string
	// Faults serves GET and POST /v1/test/faults, which replace the set of
	// peers whose outbound frames are dropped at run time (faults.go).
	Faults bool
	// KVWireVersion, when non-zero, makes the kv state send this wire
	// version (rolling-upgrade tests).
	KVWireVersion uint32
	// LoadRate, when positive, registers the in-memory delta state
	// test-load and mutates it this many times per second (overload
	// tests, testload.go).
	LoadRate int
	// LoadFor, when positive, stops the test load after this long.
	LoadFor time.Duration
}

// validate checks the hooks' values.
func (h TestHooks) validate() error {
	if h.LoadRate < 0 {
		return errors.New("agent: test hooks: LoadRate is negative")
	}
	return nil
}

// Option adjusts how [Start] builds an agent: [WithRuntime] for an
// application's own actor runtime, [WithTestHooks] for tests.
type Option func(*options)

type options struct {
	hooks   TestHooks
	logOut  io.Writer           // os.Stderr unless a test captures the log
	runtime dstate.ActorRuntime // nil: the agent runs a gosched runtime of its own
}

// WithTestHooks starts the agent with test hooks. For tests only.
func WithTestHooks(h TestHooks) Option { return func(o *options) { o.hooks = h } }

// withLogOutput writes the agent's log to w (tests).
func withLogOutput(w io.Writer) Option { return func(o *options) { o.logOut = w } }
