package codec

import (
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// SimpleState is a [dstate.DistributedState] whose value T is encoded by a
// [Codec], on the wire and on disk alike. Make one with [Simple]; set
// Version and Migrate when the encoding changes.
type SimpleState[T any] struct {
	// StateName is the state's cluster-wide unique name.
	StateName string
	// Codec encodes the value in Version.
	Codec Codec[T]
	// Version is the version of Codec's encoding, sent and stored; 0
	// means 1.
	Version uint32
	// Migrate, when set, decodes a value encoded in another (older)
	// version: what a node not yet upgraded sends, or what an older
	// release stored. Without it such a value is dstate.ErrUnknownVersion.
	Migrate func(data []byte, fromVersion uint32) (T, error)
}

var (
	_ dstate.DistributedState[int] = SimpleState[int]{}
	_ dstate.StateMigrator[int]    = SimpleState[int]{}
)

// Simple returns the state named name whose value T is encoded by c, in
// version 1.
func Simple[T any](name string, c Codec[T]) SimpleState[T] {
	return SimpleState[T]{StateName: name, Codec: c}
}

// Name implements dstate.StateCodec.
func (s SimpleState[T]) Name() string { return s.StateName }

// WireVersion implements dstate.StateCodec: Version, or 1.
func (s SimpleState[T]) WireVersion() uint32 { return max(s.Version, 1) }

// StorageVersion implements dstate.StateCodec: the wire version.
func (s SimpleState[T]) StorageVersion() uint32 { return s.WireVersion() }

// EncodeState implements dstate.StateCodec.
func (s SimpleState[T]) EncodeState(v T) ([]byte, error) { return s.Codec.Encode(v) }

// DecodeState implements dstate.StateCodec: the current version through
// Codec, another through Migrate.
func (s SimpleState[T]) DecodeState(data []byte, version uint32) (T, error) {
	if version == s.WireVersion() {
		v, err := s.Codec.Decode(data)
		if err != nil {
			return v, fmt.Errorf("state %q: %w", s.StateName, err)
		}
		return v, nil
	}
	return s.MigrateState(data, version)
}

// MigrateState implements dstate.StateMigrator through Migrate.
func (s SimpleState[T]) MigrateState(data []byte, fromVersion uint32) (T, error) {
	if s.Migrate == nil {
		var zero T
		return zero, fmt.Errorf("state %q: %w", s.StateName, dstate.UnknownVersionError(fromVersion))
	}
	return s.Migrate(data, fromVersion)
}
