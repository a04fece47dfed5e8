package serfevents

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Sentinel errors. The typed errors below wrap them, so callers test with
// errors.Is.
var (
	// ErrInvalidConfig: a Config field is invalid. Every *ConfigError
	// matches it.
	ErrInvalidConfig = errors.New("serfevents: invalid config")
	// ErrClosed: the Membership was shut down.
	ErrClosed = errors.New("serfevents: closed")
	// ErrJoin: no seed could be contacted. Every *JoinError matches it.
	ErrJoin = errors.New("serfevents: join failed")
	// ErrEncryption: a peer could not decrypt our gossip or we could not
	// decrypt theirs: the two nodes do not share a gossip encryption key (or
	// one of them has encryption off). A *JoinError matches it when that is
	// the reason the join failed.
	ErrEncryption = errors.New("serfevents: gossip encryption key mismatch")
	// ErrTagsTooLarge: the encoded tags exceed MaxTagsSize bytes. Every
	// *TagsSizeError matches it.
	ErrTagsTooLarge = errors.New("serfevents: tags too large")
	// ErrBadStatesTag: a states tag (TagStates) is not well formed, or a
	// state name cannot be written in one.
	ErrBadStatesTag = errors.New("serfevents: bad states tag")
	// ErrBadKey: a gossip encryption key is not base64 or not 16, 24 or 32
	// bytes long.
	ErrBadKey = errors.New("serfevents: bad encryption key")
	// ErrKeyFile: a key file could not be read or parsed.
	ErrKeyFile = errors.New("serfevents: bad key file")
	// ErrNoEncryption: a keyring operation was asked of a Membership
	// started without encryption keys.
	ErrNoEncryption = errors.New("serfevents: encryption is not enabled")
	// ErrKeyOperation: a keyring operation failed on at least one member
	// (or not every member answered). Every *KeyOperationError matches it.
	ErrKeyOperation = errors.New("serfevents: keyring operation failed")
	// ErrUnknownMember: a force-leave named a node that is not a member.
	ErrUnknownMember = errors.New("serfevents: no such member")
	// ErrMemberAlive: a force-leave named a member that is alive (or this
	// node itself); only failed members can be forced out.
	ErrMemberAlive = errors.New("serfevents: member is alive")
)

// ConfigError names an invalid Config field and why it is invalid.
type ConfigError struct {
	Field  string
	Reason string
}

// Error names the field and the reason.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s %s", ErrInvalidConfig, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// JoinError reports a join in which no seed answered. Attempts is the number
// of rounds tried; Err is the last round's error from memberlist.
// Encryption is true when that error shows a gossip key mismatch; the
// error then also matches ErrEncryption.
type JoinError struct {
	Seeds      []string
	Attempts   int
	Encryption bool
	Err        error
}

// Error names the seeds, the attempts, the key mismatch when there is one,
// and the cause.
func (e *JoinError) Error() string {
	msg := fmt.Sprintf("serfevents: join %v failed after %d attempt(s)", e.Seeds, e.Attempts)
	if e.Encryption {
		msg += " (gossip encryption key mismatch: the seeds and this node do not share a key)"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrJoin, ErrEncryption when it applies, and the cause.
func (e *JoinError) Unwrap() []error {
	errs := []error{ErrJoin}
	if e.Encryption {
		errs = append(errs, ErrEncryption)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// TagsSizeError reports tags whose encoding is longer than serf allows.
type TagsSizeError struct {
	Size  int // encoded size in bytes
	Limit int // MaxTagsSize
}

// Error gives the size and the limit.
func (e *TagsSizeError) Error() string {
	return fmt.Sprintf("%v: encoded tags are %d bytes, the limit is %d", ErrTagsTooLarge, e.Size, e.Limit)
}

// Unwrap returns ErrTagsTooLarge.
func (e *TagsSizeError) Unwrap() error { return ErrTagsTooLarge }

// KeyOperationError reports a keyring operation that did not succeed on
// every member. Result holds what the members answered.
type KeyOperationError struct {
	Op     string // "install", "use", "remove" or "list"
	Result KeyResult
	Err    error // serf's summary
}

// Error names the operation, serf's summary and each member's message.
func (e *KeyOperationError) Error() string {
	msg := fmt.Sprintf("%v: %s", ErrKeyOperation, e.Op)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	for _, node := range slices.Sorted(maps.Keys(e.Result.Messages)) {
		if m := e.Result.Messages[node]; m != "" {
			msg += fmt.Sprintf("; %s: %s", node, m)
		}
	}
	return msg
}

// Unwrap returns ErrKeyOperation and the cause.
func (e *KeyOperationError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrKeyOperation}
	}
	return []error{ErrKeyOperation, e.Err}
}
