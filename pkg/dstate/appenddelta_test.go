package dstate_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// appendingLoad is loadState with the DeltaAppender capability; fail makes
// AppendDelta fail or panic for a given field.
type appendingLoad struct {
	loadState
	fail func(d LoadChange) error
}

func (s appendingLoad) AppendDelta(dst []byte, d LoadChange) ([]byte, error) {
	if s.fail != nil {
		if err := s.fail(d); err != nil {
			return nil, err
		}
	}
	return binary.AppendVarint(append(dst, d.Field), d.Value), nil
}

func newAppendingEngine(t *testing.T, def appendingLoad) *dstate.DeltaEngine[Load, Load, LoadChange, LoadChange] {
	t.Helper()
	e, err := dstate.NewDeltaEngine[Load, Load, LoadChange, LoadChange](def, "n1", dstate.DefaultStateConfig(), dstate.SystemClock{}, Load{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func setField(field uint8, value int64) func(*Load) LoadChange {
	return func(l *Load) LoadChange {
		*[]*int64{&l.CPU, &l.Mem, &l.Conns}[field] = value
		return LoadChange{Field: field, Value: value}
	}
}

// A state with AppendDelta sends exactly EncodeDelta's bytes; the buffer is
// reused by the next mutation, so PreparedDelta hands out a copy that the
// next mutation does not overwrite.
func TestAppendDeltaSendsEncodeDeltasBytes(t *testing.T) {
	e := newAppendingEngine(t, appendingLoad{})
	_, d := e.PrepareDelta(setField(0, 300))
	kept := e.PreparedDelta()
	want, _ := loadState{}.EncodeDelta(d)
	if string(kept) != string(want) {
		t.Fatalf("PreparedDelta %x, want %x", kept, want)
	}
	res := e.Commit()
	if len(res.Actions) != 1 || res.Actions[0].Kind != dstate.ActionBroadcast || string(res.Actions[0].Message.Data) != string(want) {
		t.Fatalf("actions %+v, want one broadcast of %x", res.Actions, want)
	}
	frame := dstate.EncodeWire(&res.Actions[0].Message)

	_, d2 := e.PrepareDelta(setField(1, -7))
	want2, _ := loadState{}.EncodeDelta(d2)
	if got := e.PreparedDelta(); string(got) != string(want2) {
		t.Fatalf("second PreparedDelta %x, want %x", got, want2)
	}
	if string(kept) != string(want) {
		t.Fatalf("the first PreparedDelta changed to %x by the next mutation (want a copy: %x)", kept, want)
	}
	e.Commit()
	m, err := dstate.DecodeWire(frame)
	if err != nil || string(m.Data) != string(want) {
		t.Fatalf("the first mutation's frame decodes to %x, %v; want %x", m.Data, err, want)
	}
}

// AppendDelta failing or panicking is EncodeDelta failing or panicking: a
// failure sends a snapshot instead, a panic undoes the mutation and names
// the EncodeDelta callback.
func TestAppendDeltaFailureAndPanic(t *testing.T) {
	e := newAppendingEngine(t, appendingLoad{fail: func(d LoadChange) error {
		switch d.Field {
		case 1:
			return errors.New("no room")
		case 2:
			panic("appender exploded")
		}
		return nil
	}})
	e.PrepareDelta(setField(1, 5))
	res := e.Commit()
	if len(res.Actions) != 1 || res.Actions[0].Message.Kind != dstate.KindFullSnapshot {
		t.Fatalf("a failed AppendDelta sent %+v, want one snapshot", res.Actions)
	}
	gen := e.Generation()
	_, _, err := e.TryPrepareDelta(setField(2, 9))
	var pe *dstate.CallbackPanicError
	if !errors.As(err, &pe) || pe.Callback != dstate.CallbackEncodeDelta {
		t.Fatalf("a panicking AppendDelta returned %v, want a CallbackPanicError naming %s", err, dstate.CallbackEncodeDelta)
	}
	if e.Generation() != gen || e.State().Value.Conns != 0 {
		t.Fatalf("after the panic: generation %s value %+v, want %s and the value before", e.Generation(), e.State().Value, gen)
	}
	_, d := e.PrepareDelta(setField(0, 1))
	want, _ := loadState{}.EncodeDelta(d)
	if res := e.Commit(); string(res.Actions[0].Message.Data) != string(want) {
		t.Fatalf("after the panic the next delta is %x, want %x", res.Actions[0].Message.Data, want)
	}
}
