package dstatetest

import (
	"fmt"
	"sync/atomic"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// PanicSwitch names the callback a [PanickyGauges] panics in. The zero
// value panics nowhere. It is safe for concurrent use.
type PanicSwitch struct{ callback atomic.Pointer[string] }

// Set makes the named callback (one of the dstate.Callback… constants)
// panic on every call until Clear.
func (s *PanicSwitch) Set(callback string) { s.callback.Store(&callback) }

// Clear stops the panics.
func (s *PanicSwitch) Clear() { s.callback.Store(nil) }

// check panics when callback is the one set.
func (s *PanicSwitch) check(callback string) {
	if s == nil {
		return
	}
	if c := s.callback.Load(); c != nil && *c == callback {
		panic(fmt.Sprintf("dstatetest: injected panic in %s", callback))
	}
}

// PanickyGauges is [GaugesState] whose callbacks panic when Switch names
// them: ProjectView, ProjectDelta, SyncUrgency, EncodeView, EncodeDelta,
// EncodeState, DecodeView, DecodeState, and ApplyDelta (for both decoding
// and applying a peer's delta).
type PanickyGauges struct {
	GaugesState
	Switch *PanicSwitch
}

var _ dstate.DeltaDistributedState[Gauges, GaugesView, GaugeDelta, GaugeChange] = PanickyGauges{}

// ProjectView panics when switched, else projects as GaugesState does.
func (g PanickyGauges) ProjectView(s *Gauges) GaugesView {
	g.Switch.check(dstate.CallbackProjectView)
	return g.GaugesState.ProjectView(s)
}

// ProjectDelta panics when switched.
func (g PanickyGauges) ProjectDelta(c GaugeChange) GaugeDelta {
	g.Switch.check(dstate.CallbackProjectDelta)
	return g.GaugesState.ProjectDelta(c)
}

// SyncUrgency panics when switched.
func (g PanickyGauges) SyncUrgency(old, new GaugesView, c GaugeChange) dstate.SyncUrgency {
	g.Switch.check(dstate.CallbackSyncUrgency)
	return g.GaugesState.SyncUrgency(old, new, c)
}

// ApplyDelta panics when switched.
func (g PanickyGauges) ApplyDelta(v GaugesView, d GaugeDelta) (GaugesView, error) {
	g.Switch.check(dstate.CallbackApplyDelta)
	return g.GaugesState.ApplyDelta(v, d)
}

// EncodeView panics when switched.
func (g PanickyGauges) EncodeView(v GaugesView) ([]byte, error) {
	g.Switch.check(dstate.CallbackEncodeView)
	return g.GaugesState.EncodeView(v)
}

// DecodeView panics when switched.
func (g PanickyGauges) DecodeView(data []byte, wv uint32) (GaugesView, error) {
	g.Switch.check(dstate.CallbackDecodeView)
	return g.GaugesState.DecodeView(data, wv)
}

// EncodeDelta panics when switched.
func (g PanickyGauges) EncodeDelta(d GaugeDelta) ([]byte, error) {
	g.Switch.check(dstate.CallbackEncodeDelta)
	return g.GaugesState.EncodeDelta(d)
}

// DecodeDelta panics when ApplyDelta is switched.
func (g PanickyGauges) DecodeDelta(data []byte, wv uint32) (GaugeDelta, error) {
	g.Switch.check(dstate.CallbackApplyDelta)
	return g.GaugesState.DecodeDelta(data, wv)
}

// EncodeState panics when switched.
func (g PanickyGauges) EncodeState(s Gauges) ([]byte, error) {
	g.Switch.check(dstate.CallbackEncodeState)
	return g.GaugesState.EncodeState(s)
}

// DecodeState panics when switched.
func (g PanickyGauges) DecodeState(data []byte, sv uint32) (Gauges, error) {
	g.Switch.check(dstate.CallbackDecodeState)
	return g.GaugesState.DecodeState(data, sv)
}
