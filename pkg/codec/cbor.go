package codec

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Limits of the CBOR decoder: no input nests deeper, and no array or map
// holds more elements, whatever the input says.
const (
	CBORMaxNesting  = 32
	CBORMaxElements = 1 << 20
)

var (
	cborEnc cbor.EncMode
	cborDec cbor.DecMode
)

func init() {
	var err error
	// Core deterministic encoding: map keys sorted, shortest forms, so that
	// equal values encode to equal bytes.
	if cborEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	if cborDec, err = (cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  CBORMaxNesting,
		MaxArrayElements: CBORMaxElements,
		MaxMapPairs:      CBORMaxElements,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	}).DecMode(); err != nil {
		panic(err)
	}
}

// CBOR returns the CBOR codec of T (RFC 8949 core deterministic encoding,
// through github.com/fxamacker/cbor): compact and binary. Struct fields are
// named by their `cbor` tag, else their `json` tag, else their name; a
// `cbor:"1,keyasint"` tag encodes the field as a small integer for the
// smallest encoding. Decoding rejects duplicate map keys, tags,
// indefinite lengths, invalid UTF-8, nesting deeper than
// [CBORMaxNesting] and arrays or maps of more than [CBORMaxElements].
func CBOR[T any]() Codec[T] { return cborCodec[T]{} }

type cborCodec[T any] struct{}

// Encode implements Codec.
func (cborCodec[T]) Encode(v T) ([]byte, error) { return cborEnc.Marshal(v) }

// Decode implements Codec.
func (cborCodec[T]) Decode(data []byte) (T, error) {
	var v T
	if err := cborDec.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("%w: cbor: %v", dstate.ErrMalformed, err)
	}
	return v, nil
}
