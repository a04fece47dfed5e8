package transport

import (
	"errors"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Sentinel errors. The typed errors below wrap them, so callers test with
// errors.Is.
var (
	// ErrClosed: the transport is closed (or closing).
	ErrClosed = errors.New("transport: closed")
	// ErrAlreadyStarted: Start was called more than once.
	ErrAlreadyStarted = errors.New("transport: already started")
	// ErrUnknownPeer: Send named a peer that SetPeer never recorded (or that
	// RemovePeer forgot).
	ErrUnknownPeer = errors.New("transport: unknown peer")
	// ErrQueueFull: the peer's send queue holds Config.QueueSize frames; the
	// frame was dropped.
	ErrQueueFull = errors.New("transport: queue full")
	// ErrFrameTooLarge: a frame is longer than Config.MaxFrameSize.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrHandshake: the connection handshake failed. Every *HandshakeError
	// matches it.
	ErrHandshake = errors.New("transport: handshake failed")
	// ErrRefused: the remote node refused the handshake; the
	// *HandshakeError carries its reason.
	ErrRefused = errors.New("transport: handshake refused")
	// ErrBadMagic: the remote did not open with the "DSTT" magic bytes, so it
	// does not speak this protocol (or speaks TLS to a plaintext listener).
	ErrBadMagic = errors.New("transport: bad magic")
	// ErrMalformed: a handshake message is not well formed.
	ErrMalformed = errors.New("transport: malformed handshake")
	// ErrProtocolVersion: the two nodes speak different protocol versions.
	ErrProtocolVersion = errors.New("transport: protocol version mismatch")
	// ErrClusterMismatch: the two nodes belong to different clusters.
	ErrClusterMismatch = errors.New("transport: cluster name mismatch")
	// ErrBadNodeID: a handshake carried an empty or oversized node ID, or the
	// local node's own ID.
	ErrBadNodeID = errors.New("transport: bad node id")
	// ErrUnexpectedPeer: the node reached at a peer's address has another ID
	// than the one SetPeer recorded for that address.
	ErrUnexpectedPeer = errors.New("transport: unexpected peer")
	// ErrIdentityMismatch: the peer's verified TLS certificate does not
	// name the node ID it claims (or, dialing, the node ID expected at that
	// address).
	ErrIdentityMismatch = errors.New("transport: certificate does not name the node ID")
	// ErrIdleTimeout: an inbound connection delivered nothing, not even a
	// keepalive, for Config.IdleTimeout; it was closed.
	ErrIdleTimeout = errors.New("transport: connection idle too long")
	// ErrReadTimeout: a frame (or the next fragment of a message) did not
	// arrive within Config.ReadTimeout per started MiB once it had begun;
	// the connection was closed.
	ErrReadTimeout = errors.New("transport: frame not received in time")
	// ErrReassemblyBudget: a partially received message would have taken
	// the memory held by all of them past Config.MaxReassemblySize; its
	// connection was closed. Every *BudgetError matches it.
	ErrReassemblyBudget = errors.New("transport: reassembly budget exhausted")
	// ErrInvalidConfig: a Config field is invalid. Every *ConfigError
	// matches it.
	ErrInvalidConfig = errors.New("transport: invalid config")
)

// ConfigError names an invalid Config field and why it is invalid.
type ConfigError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("%v: %s %s", ErrInvalidConfig, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// FrameSizeError reports a frame longer than the limit: one given to Send,
// or one whose declared length arrived on an inbound connection (which is
// then closed without reading the frame).
type FrameSizeError struct {
	Size  uint64
	Limit int
	// Message is true when the limit is MaxMessageSize (a whole,
	// possibly fragmented, message), false for MaxFrameSize (one frame).
	Message bool
}

// Error implements error.
func (e *FrameSizeError) Error() string {
	what := "frame"
	if e.Message {
		what = "message"
	}
	return fmt.Sprintf("%v: %s of %d bytes exceeds the limit of %d", ErrFrameTooLarge, what, e.Size, e.Limit)
}

// Unwrap returns ErrFrameTooLarge.
func (e *FrameSizeError) Unwrap() error { return ErrFrameTooLarge }

// BudgetError reports a message refused because the node's budget for
// partially received messages (Config.MaxReassemblySize) could not hold it
// as it grew.
type BudgetError struct {
	Size  int // the bytes of the message received or announced so far
	Held  int // the bytes all partial messages held when it was refused
	Limit int // Config.MaxReassemblySize
}

// Error implements error.
func (e *BudgetError) Error() string {
	return fmt.Sprintf("%v: a message growing to %d bytes does not fit: partial messages hold %d of %d bytes",
		ErrReassemblyBudget, e.Size, e.Held, e.Limit)
}

// Unwrap returns ErrReassemblyBudget.
func (e *BudgetError) Unwrap() error { return ErrReassemblyBudget }

// HandshakeError reports a failed connection handshake on either side.
//
// On the dialing side Refused is true when the remote sent a refusal; Reason
// is then the remote's own words. On the accepting side Reason is the text
// sent back to the dialer. Err is the kind (ErrProtocolVersion,
// ErrClusterMismatch, ErrBadNodeID, ErrUnexpectedPeer, ErrBadMagic,
// ErrMalformed, ErrRefused) or the underlying I/O or TLS error.
type HandshakeError struct {
	Addr    string        // the remote address
	Peer    dstate.NodeID // the remote node ID, when known
	Refused bool          // the remote refused us
	Reason  string
	Err     error
}

// Error implements error.
func (e *HandshakeError) Error() string {
	reason := e.Reason
	if reason == "" && e.Err != nil {
		reason = e.Err.Error()
	}
	if e.Refused {
		return fmt.Sprintf("transport: handshake with %s refused: %s", e.Addr, reason)
	}
	return fmt.Sprintf("transport: handshake with %s failed: %s", e.Addr, reason)
}

// Unwrap returns ErrHandshake and the cause.
func (e *HandshakeError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrHandshake}
	}
	return []error{ErrHandshake, e.Err}
}
