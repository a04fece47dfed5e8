package codec

import (
	"encoding/json"
	"fmt"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Codec encodes and decodes the values of one Go type. Implementations
// are stateless and safe for concurrent use. Decode gets hostile input: it
// must not panic, must allocate in proportion to len(data), and must wrap
// [dstate.ErrMalformed] in every error.
type Codec[T any] interface {
	// Encode returns the encoding of v.
	Encode(v T) ([]byte, error)
	// Decode decodes data, which must hold exactly one value.
	Decode(data []byte) (T, error)
}

// JSON returns the encoding/json codec of T: readable, and what the admin
// API shows. Struct tags shape it as encoding/json documents; map keys are
// sorted, so equal values encode equally.
func JSON[T any]() Codec[T] { return jsonCodec[T]{} }

type jsonCodec[T any] struct{}

// Encode implements Codec.
func (jsonCodec[T]) Encode(v T) ([]byte, error) { return json.Marshal(v) }

// Decode implements Codec.
func (jsonCodec[T]) Decode(data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("%w: json: %v", dstate.ErrMalformed, err)
	}
	return v, nil
}
