package dstate

import (
	"errors"
	"fmt"
	"slices"
)

// Sentinel errors. Typed errors below wrap or match them, so callers test
// with errors.Is.
var (
	// ErrStateNotRegistered: no state of that name is registered.
	ErrStateNotRegistered = errors.New("dstate: state not registered")
	// ErrTypeMismatch: a state is registered under the name with other types.
	ErrTypeMismatch = errors.New("dstate: state type mismatch")
	// ErrDuplicateName: a state of that name is already registered.
	ErrDuplicateName = errors.New("dstate: duplicate state name")
	// ErrStalePeer: a query could not refresh a stale peer in time.
	ErrStalePeer = errors.New("dstate: stale peer")
	// ErrPeerFailed: a query named a stale peer that counts as failed
	// (membership reports it failed, it answered no snapshot request within
	// the pull timeout, or there is no readable view of it): it was neither
	// pulled nor waited for. A *QueryError with a non-empty Failed matches
	// it as well as ErrStalePeer.
	ErrPeerFailed = errors.New("dstate: peer failed")
	// ErrActorStopped: the state's actor has stopped.
	ErrActorStopped = errors.New("dstate: actor stopped")
	// ErrPersistenceFailed: a mutation was rolled back because it could not
	// be saved.
	ErrPersistenceFailed = errors.New("dstate: persistence failed")
	// ErrUnknownVersion: data is in a version the decoder cannot read.
	ErrUnknownVersion = errors.New("dstate: unknown version")
	// ErrMalformed: data is not a valid encoding.
	ErrMalformed = errors.New("dstate: malformed data")
	// ErrStorageUnavailable: the persistence backend cannot store now.
	ErrStorageUnavailable = errors.New("dstate: storage unavailable")
	// ErrDeserializationFailed: stored data could not be decoded.
	ErrDeserializationFailed = errors.New("dstate: deserialization failed")
	// ErrIO: the persistence backend failed with an I/O error.
	ErrIO = errors.New("dstate: i/o error")
	// ErrMailboxFull: an actor's mailbox is full.
	ErrMailboxFull = errors.New("dstate: mailbox full")
	// ErrLimitExceeded: an input is over a configured limit. A
	// *DeserializeError with a Limit matches it as well as its Kind.
	ErrLimitExceeded = errors.New("dstate: limit exceeded")
	// ErrStateTooLarge: a mutation was refused at the owner because its
	// result would not replicate: its snapshot or its delta would encode
	// over the size limit peers decode with. The state, its generation and
	// its views are as before the mutation. A *SizeLimitError carries it
	// and matches ErrLimitExceeded as well.
	ErrStateTooLarge = errors.New("dstate: state too large")
)

// RegistryError reports a registry lookup or registration failure. Kind is
// one of ErrStateNotRegistered, ErrTypeMismatch or ErrDuplicateName.
type RegistryError struct {
	Kind     error
	Name     string
	Expected string // for ErrTypeMismatch
	Actual   string // for ErrTypeMismatch
}

// Error implements error.
func (e *RegistryError) Error() string {
	if errors.Is(e.Kind, ErrTypeMismatch) {
		return fmt.Sprintf("%v: %q is %s, not %s", e.Kind, e.Name, e.Actual, e.Expected)
	}
	return fmt.Sprintf("%v: %q", e.Kind, e.Name)
}

// Unwrap returns Kind.
func (e *RegistryError) Unwrap() error { return e.Kind }

// StalePeer names one peer a query could not refresh and why.
type StalePeer struct {
	Node   NodeID
	Reason string
}

// QueryError reports a query that could not be answered fully. For
// ErrStalePeer, Peers names every peer whose view was still stale when the
// query returned, with the reason; the query's result was still computed
// over the views available (the last views of those peers included).
// Failed lists, sorted, those of them that count as failed: they were not
// pulled and the query did not wait for them, so a query answers at once
// when only failed peers are stale. The others are stale peers that did not
// answer the query's pull in time. Callers branch with
// errors.Is(err, ErrPeerFailed) or by reading Failed.
type QueryError struct {
	Kind   error // ErrStalePeer, ErrActorStopped, or a *RegistryError
	State  string
	Peers  []StalePeer
	Failed []NodeID
}

// Is reports whether target is ErrPeerFailed and the query named a failed
// peer (Kind is matched through Unwrap).
func (e *QueryError) Is(target error) bool { return target == ErrPeerFailed && len(e.Failed) > 0 }

// StaleNodes returns, in order, the nodes of Peers that are not in Failed:
// the stale peers the query pulled and waited for in vain.
func (e *QueryError) StaleNodes() []NodeID {
	var out []NodeID
	for _, p := range e.Peers {
		if !slices.Contains(e.Failed, p.Node) {
			out = append(out, p.Node)
		}
	}
	return out
}

// Error implements error.
func (e *QueryError) Error() string {
	if len(e.Peers) == 0 {
		return fmt.Sprintf("dstate: query %q: %v", e.State, e.Kind)
	}
	s := fmt.Sprintf("dstate: query %q: %v:", e.State, e.Kind)
	for i, p := range e.Peers {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(" %s (%s)", p.Node, p.Reason)
	}
	return s
}

// Unwrap returns Kind.
func (e *QueryError) Unwrap() error { return e.Kind }

// MutationError reports a mutation that did not take effect.
type MutationError struct {
	Kind  error // ErrPersistenceFailed, ErrCallbackPanic or ErrActorStopped
	State string
	Err   error // the underlying cause, if any
}

// Error implements error.
func (e *MutationError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("dstate: mutate %q: %v: %v", e.State, e.Kind, e.Err)
	}
	return fmt.Sprintf("dstate: mutate %q: %v", e.State, e.Kind)
}

// Unwrap returns both the kind and the cause.
func (e *MutationError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// DeserializeError reports data that could not be decoded: an unknown
// version (Kind ErrUnknownVersion, Version set) or malformed bytes (Kind
// ErrMalformed, Detail says what was wrong). Limit, when set, names the
// [DecodeLimits] limit the input exceeded (one of the Limit… constants), and
// the error then also matches ErrLimitExceeded.
type DeserializeError struct {
	Kind    error
	Version uint32
	Detail  string
	Limit   string
}

// Error implements error.
func (e *DeserializeError) Error() string {
	if errors.Is(e.Kind, ErrUnknownVersion) {
		if e.Detail != "" {
			return fmt.Sprintf("%v %d: %s", e.Kind, e.Version, e.Detail)
		}
		return fmt.Sprintf("%v %d", e.Kind, e.Version)
	}
	return fmt.Sprintf("%v: %s", e.Kind, e.Detail)
}

// Unwrap returns Kind, and ErrLimitExceeded when Limit is set.
func (e *DeserializeError) Unwrap() []error {
	if e.Limit != "" {
		return []error{e.Kind, ErrLimitExceeded}
	}
	return []error{e.Kind}
}

// UnknownVersionError returns a DeserializeError for an unreadable version.
func UnknownVersionError(v uint32) error {
	return &DeserializeError{Kind: ErrUnknownVersion, Version: v}
}

// MalformedError returns a DeserializeError for bad bytes.
func MalformedError(format string, args ...any) error {
	return &DeserializeError{Kind: ErrMalformed, Detail: fmt.Sprintf(format, args...)}
}

// SizeLimitError reports a mutation refused at the owner because its
// result would encode over a size limit (see [Engine.SetSizeLimits]): a
// snapshot over [DecodeLimits].MaxSnapshot or a delta over MaxDelta, which
// every peer would refuse. The mutation was undone. It matches
// ErrStateTooLarge and ErrLimitExceeded.
type SizeLimitError struct {
	// State is the state's name.
	State string
	// Limit is LimitSnapshotBytes or LimitDeltaBytes.
	Limit string
	// Size is the length in bytes the snapshot or delta would encode to.
	Size int
	// Max is the limit in bytes.
	Max int
}

// Error implements error.
func (e *SizeLimitError) Error() string {
	if e.Limit == LimitDeltaBytes {
		return fmt.Sprintf("dstate: state %q: the mutation's delta would encode to %s (%d bytes), over the %s delta limit; the mutation was undone",
			e.State, formatBytes(e.Size), e.Size, formatBytes(e.Max))
	}
	return fmt.Sprintf("dstate: state %q would encode to %s (%d bytes), over the %s snapshot limit; the mutation was undone",
		e.State, formatBytes(e.Size), e.Size, formatBytes(e.Max))
}

// Unwrap returns ErrStateTooLarge and ErrLimitExceeded.
func (e *SizeLimitError) Unwrap() []error { return []error{ErrStateTooLarge, ErrLimitExceeded} }

// PersistError reports a persistence failure. Kind is one of
// ErrStorageUnavailable, ErrDeserializationFailed or ErrIO.
type PersistError struct {
	Kind error
	Op   string // "save" or "load"
	Err  error
	// Stored is the generation of a stored object that could not be read,
	// when known: a host falling back to an empty state starts a larger
	// incarnation than it.
	Stored Generation
}

// Error implements error.
func (e *PersistError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%v: %s: %v", e.Kind, e.Op, e.Err)
	}
	return fmt.Sprintf("%v: %s", e.Kind, e.Op)
}

// Unwrap returns both the kind and the cause.
func (e *PersistError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// ActorSendError reports a message an actor could not take. Kind is
// ErrMailboxFull or ErrActorStopped.
type ActorSendError struct {
	Kind  error
	Actor string
}

// Error implements error.
func (e *ActorSendError) Error() string { return fmt.Sprintf("%v: actor %q", e.Kind, e.Actor) }

// Unwrap returns Kind.
func (e *ActorSendError) Unwrap() error { return e.Kind }

// ClusterError reports a failure of the membership layer.
type ClusterError struct {
	Op  string
	Err error
}

// Error implements error.
func (e *ClusterError) Error() string { return fmt.Sprintf("dstate: cluster %s: %v", e.Op, e.Err) }

// Unwrap returns the cause.
func (e *ClusterError) Unwrap() error { return e.Err }

// GroupError reports a processing-group failure.
type GroupError struct {
	Group string
	Err   error
}

// Error implements error.
func (e *GroupError) Error() string { return fmt.Sprintf("dstate: group %q: %v", e.Group, e.Err) }

// Unwrap returns the cause.
func (e *GroupError) Unwrap() error { return e.Err }
