package agent

import (
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/replicated"
)

// Names of the built-in states every agent registers.
const (
	KVState        = "kv"         // a per-node string map, replicated by deltas
	DurableKVState = "durable-kv" // like kv, saved through Raft before it is published
	LoadState      = "load"       // the process's goroutines, heap and uptime
)

// KV is the value of the kv states: a node's own string map, persistent
// (a write makes a new map that shares storage with the old one, which
// stays as it was).
type KV = replicated.MapValue[string, string]

// KVChange is one write to a kv state, also its replicated delta. Its
// JSON is {"k":key,"v":value} or {"k":key,"d":true}.
type KVChange = replicated.MapChange[string, string]

// KVDef defines a kv state: a [replicated.Map] from string to string in
// JSON ([replicated.JSONMap]), the encoding the kv states have always had
// on the wire (views and deltas) and on disk. Its shard's handle is
// replicated.NewMapShard(shard).
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

// Map returns the replicated.Map that d defines.
func (d KVDef) Map() replicated.Map[string, string] {
	return replicated.Map[string, string]{StateName: d.StateName, Wire: d.Wire, Codec: kvCodec}
}

// kvCodec is the kv states' encoding: JSON.
var kvCodec = replicated.JSONMap[string, string]()

// Name implements dstate.DeltaDistributedState.
func (d KVDef) Name() string { return d.StateName }

// WireVersion implements dstate.DeltaDistributedState.
func (d KVDef) WireVersion() uint32 { return d.Map().WireVersion() }

// StorageVersion implements dstate.DeltaDistributedState.
func (d KVDef) StorageVersion() uint32 { return d.Map().StorageVersion() }

// ProjectView implements dstate.DeltaDistributedState: the map itself
// (no copy).
func (d KVDef) ProjectView(s *KV) KV { return *s }

// ProjectDelta implements dstate.DeltaDistributedState.
func (KVDef) ProjectDelta(c KVChange) KVChange { return c }

// ApplyDelta implements dstate.DeltaDistributedState.
func (KVDef) ApplyDelta(v KV, c KVChange) (KV, error) { return v.Apply(c), nil }

// SyncUrgency implements dstate.UrgencyDecider: every write goes with the
// state's push mode.
func (KVDef) SyncUrgency(_, _ KV, _ KVChange) dstate.SyncUrgency { return dstate.Default }

// EncodeView implements dstate.DeltaDistributedState.
func (d KVDef) EncodeView(v KV) ([]byte, error) { return d.Map().EncodeView(v) }

// DecodeView implements dstate.DeltaDistributedState.
func (d KVDef) DecodeView(b []byte, version uint32) (KV, error) {
	return d.Map().DecodeView(b, version)
}

// EncodeDelta implements dstate.DeltaDistributedState.
func (d KVDef) EncodeDelta(c KVChange) ([]byte, error) { return d.Map().EncodeDelta(c) }

// DecodeDelta implements dstate.DeltaDistributedState.
func (d KVDef) DecodeDelta(b []byte, version uint32) (KVChange, error) {
	return d.Map().DecodeDelta(b, version)
}

// EncodeState implements dstate.DeltaDistributedState.
func (d KVDef) EncodeState(s KV) ([]byte, error) { return d.Map().EncodeState(s) }

// DecodeState implements dstate.DeltaDistributedState.
func (d KVDef) DecodeState(b []byte, version uint32) (KV, error) {
	return d.Map().DecodeState(b, version)
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
