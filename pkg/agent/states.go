package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Names of the built-in states every agent registers.
const (
	KVState        = "kv"         // a per-node string map, replicated by deltas
	DurableKVState = "durable-kv" // like kv, saved through Raft before it is published
	LoadState      = "load"       // the process's goroutines, heap and uptime
)

// KV is the value of the kv states: a node's own string map.
type KV map[string]string

// KVChange is one write to a kv state, also its replicated delta.
type KVChange struct {
	Key    string `json:"k"`
	Value  string `json:"v,omitempty"`
	Delete bool   `json:"d,omitempty"`
}

// KVDef defines a kv state (a delta state whose view is the map itself).
// Views are never modified in place: ApplyDelta copies.
type KVDef struct {
	// StateName is the registered name (KVState or DurableKVState).
	StateName string
	// Wire is the wire version sent (0 means 1). Views and deltas of any
	// version up to it decode (the encoding has not changed); newer ones
	// fail with dstate.ErrUnknownVersion, as a node of an older release
	// would. Rolling-upgrade tests set it.
	Wire uint32
}

var _ dstate.DeltaDistributedState[KV, KV, KVChange, KVChange] = KVDef{}

// Name implements dstate.DeltaDistributedState.
func (d KVDef) Name() string { return d.StateName }

// WireVersion implements dstate.DeltaDistributedState.
func (d KVDef) WireVersion() uint32 {
	if d.Wire == 0 {
		return 1
	}
	return d.Wire
}

// checkWire accepts wire versions 1 up to the definition's own.
func (d KVDef) checkWire(what string, version uint32) error {
	if version == 0 || version > d.WireVersion() {
		return fmt.Errorf("%w: kv %s wire version %d (this node reads 1..%d)", dstate.ErrUnknownVersion, what, version, d.WireVersion())
	}
	return nil
}

// StorageVersion implements dstate.DeltaDistributedState.
func (KVDef) StorageVersion() uint32 { return 1 }

// ProjectView implements dstate.DeltaDistributedState: a copy of the map.
func (KVDef) ProjectView(s *KV) KV { return maps.Clone(*s) }

// ProjectDelta implements dstate.DeltaDistributedState.
func (KVDef) ProjectDelta(c KVChange) KVChange { return c }

// ApplyDelta implements dstate.DeltaDistributedState.
func (KVDef) ApplyDelta(v KV, d KVChange) (KV, error) {
	out := make(KV, len(v)+1)
	maps.Copy(out, v)
	applyKV(out, d)
	return out, nil
}

func applyKV(m KV, c KVChange) {
	if c.Delete {
		delete(m, c.Key)
	} else {
		m[c.Key] = c.Value
	}
}

// SyncUrgency implements dstate.DeltaDistributedState: every write goes
// with the state's push mode.
func (KVDef) SyncUrgency(_, _ KV, _ KVChange) dstate.SyncUrgency { return dstate.Default }

// EncodeView implements dstate.DeltaDistributedState.
func (KVDef) EncodeView(v KV) ([]byte, error) { return json.Marshal(v) }

// DecodeView implements dstate.DeltaDistributedState.
func (d KVDef) DecodeView(b []byte, version uint32) (KV, error) {
	if err := d.checkWire("view", version); err != nil {
		return nil, err
	}
	return decodeKV(b, 1)
}

// EncodeDelta implements dstate.DeltaDistributedState.
func (KVDef) EncodeDelta(c KVChange) ([]byte, error) { return json.Marshal(c) }

// DecodeDelta implements dstate.DeltaDistributedState.
func (d KVDef) DecodeDelta(b []byte, version uint32) (KVChange, error) {
	var c KVChange
	if err := d.checkWire("delta", version); err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: kv delta: %v", dstate.ErrMalformed, err)
	}
	return c, nil
}

// EncodeState implements dstate.DeltaDistributedState.
func (KVDef) EncodeState(s KV) ([]byte, error) { return json.Marshal(s) }

// DecodeState implements dstate.DeltaDistributedState.
func (KVDef) DecodeState(b []byte, version uint32) (KV, error) { return decodeKV(b, version) }

func decodeKV(b []byte, version uint32) (KV, error) {
	if version != 1 {
		return nil, fmt.Errorf("%w: kv version %d", dstate.ErrUnknownVersion, version)
	}
	m := KV{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: kv: %v", dstate.ErrMalformed, err)
	}
	return m, nil
}

// Load is the value of the load state.
type Load struct {
	Goroutines    int     `json:"goroutines"`
	HeapBytes     uint64  `json:"heap_bytes"`
	UptimeSeconds float64 `json:"uptime_seconds"`
	StartedUnixMs int64   `json:"started_unix_ms"`
}

// LoadDef defines the load state (a simple state).
type LoadDef struct{}

var _ dstate.DistributedState[Load] = LoadDef{}

// Name implements dstate.DistributedState.
func (LoadDef) Name() string { return LoadState }

// WireVersion implements dstate.DistributedState.
func (LoadDef) WireVersion() uint32 { return 1 }

// StorageVersion implements dstate.DistributedState.
func (LoadDef) StorageVersion() uint32 { return 1 }

// EncodeState implements dstate.DistributedState.
func (LoadDef) EncodeState(l Load) ([]byte, error) { return json.Marshal(l) }

// DecodeState implements dstate.DistributedState.
func (LoadDef) DecodeState(b []byte, version uint32) (Load, error) {
	var l Load
	if version != 1 {
		return l, fmt.Errorf("%w: load version %d", dstate.ErrUnknownVersion, version)
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("%w: load: %v", dstate.ErrMalformed, err)
	}
	return l, nil
}

// sampleLoad reads the process's figures.
func sampleLoad(started time.Time, now time.Time) Load {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Load{
		Goroutines: runtime.NumGoroutine(), HeapBytes: ms.HeapAlloc,
		UptimeSeconds: now.Sub(started).Round(time.Millisecond).Seconds(), StartedUnixMs: started.UnixMilli(),
	}
}
