package raftpersist

import (
	"errors"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Sentinel errors. Save and Load wrap them in a *dstate.PersistError, so
// callers test with errors.Is against both these and the dstate kinds.
var (
	// ErrFenced: a save was rejected because the stored object of the same
	// state and node has a generation at least as new (a stale incarnation
	// cannot overwrite a newer one). The PersistError's Stored field holds
	// the stored generation.
	ErrFenced = errors.New("raftpersist: fenced by a newer stored generation")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("raftpersist: store closed")
	// ErrNoLeader: no leader is known, so no quorum could be reached in time.
	// Saves and linearizable reads return it as a *QuorumError saying how
	// many voters answered (quorum.go).
	ErrNoLeader = errors.New("raftpersist: no leader")
	// ErrNoQuorum: fewer than a quorum of the configuration's voters
	// answer, so no leader can be elected until more of them are back. It
	// comes as a *QuorumError, which matches ErrNoLeader too.
	ErrNoQuorum = errors.New("raftpersist: lost quorum")
	// ErrOutcomeUnknown: a save was submitted but its outcome could not be
	// learned before the deadline (it may or may not have been committed).
	ErrOutcomeUnknown = errors.New("raftpersist: outcome unknown")
	// ErrBadCommand: a log entry or request could not be decoded.
	ErrBadCommand = errors.New("raftpersist: malformed command")
	// ErrFrameTooLarge: a forwarding frame exceeds Config.MaxFrameBytes.
	ErrFrameTooLarge = errors.New("raftpersist: frame too large")
	// ErrRemote: the leader reported an error while serving a forwarded
	// request.
	ErrRemote = errors.New("raftpersist: remote error")
	// ErrForbidden: the leader refused a forwarded request the forwarding
	// node may not make: a save of another node's envelope, or a membership
	// change from a node that is not a voter. It comes wrapped with
	// ErrRemote.
	ErrForbidden = errors.New("raftpersist: forbidden")
	// ErrLastVoter: the server is the only voter of the raft
	// configuration, so it cannot be removed (a configuration needs a
	// voter); it keeps the cluster's state. See [Store.Leave].
	ErrLastVoter = errors.New("raftpersist: the last voter cannot leave the raft configuration")
	// ErrInvalidConfig: a Config field is invalid (see ConfigError).
	ErrInvalidConfig = errors.New("raftpersist: invalid config")
)

// FencedError describes a rejected save: Attempted is the generation that
// was offered, Stored the newer (or equal, with other content) generation
// already stored. It matches ErrFenced.
type FencedError struct {
	State     string
	Node      dstate.NodeID
	Attempted dstate.Generation
	Stored    dstate.Generation
}

// Error describes the rejected save.
func (e *FencedError) Error() string {
	return fmt.Sprintf("%v: state %q node %q: offered %s, stored %s", ErrFenced, e.State, e.Node, e.Attempted, e.Stored)
}

// Unwrap returns ErrFenced.
func (e *FencedError) Unwrap() error { return ErrFenced }

// ConfigError names an invalid Config field. It matches ErrInvalidConfig.
type ConfigError struct {
	Field  string
	Reason string
}

// Error names the field and the problem.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrInvalidConfig, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// unavailable wraps cause as a save or load PersistError of kind
// ErrStorageUnavailable.
func unavailable(op string, cause error) error {
	var pe *dstate.PersistError
	if errors.As(cause, &pe) {
		return cause
	}
	return &dstate.PersistError{Kind: dstate.ErrStorageUnavailable, Op: op, Err: cause}
}
