package agent

import (
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/dstate-go/dstate/pkg/dstate"
	"github.com/dstate-go/dstate/pkg/transport"
)

// Test-only fault injection. With TestHooks.Faults the agent serves
//
//	POST /v1/test/faults   FaultsRequest → FaultsStatus (the set now in force)
//	GET  /v1/test/faults   FaultsStatus
//
// which replaces the set of peers whose outbound state-transport frames are
// dropped (transport.Config.FaultHook); an empty set heals. Only the state
// transport is cut: gossip (serf) and Raft traffic still flow, so this
// partitions state replication, not membership or consensus.

// FaultsRequest is the body of POST /v1/test/faults and its answer.
type FaultsRequest struct {
	// Drop names the peers whose outbound frames are dropped.
	Drop []string `json:"drop"`
}

// FaultsStatus is the drop set in force and how many frames it dropped
// since the agent started.
type FaultsStatus struct {
	Drop    []string `json:"drop"`
	Dropped uint64   `json:"dropped"`
}

// faultSet is the set of peers to drop frames to, read on every Send and
// replaced as a whole.
type faultSet struct {
	drop atomic.Pointer[map[dstate.NodeID]bool]
}

func newFaultSet(peers []string) *faultSet {
	f := &faultSet{}
	f.set(peers)
	return f
}

// set replaces the set.
func (f *faultSet) set(peers []string) {
	m := make(map[dstate.NodeID]bool, len(peers))
	for _, p := range peers {
		m[dstate.NodeID(p)] = true
	}
	f.drop.Store(&m)
}

// list returns the set, sorted.
func (f *faultSet) list() []string {
	out := []string{}
	for p := range *f.drop.Load() {
		out = append(out, string(p))
	}
	slices.Sort(out)
	return out
}

// allow is the transport's FaultHook: false drops the frame.
func (f *faultSet) allow(to dstate.NodeID) bool { return !(*f.drop.Load())[to] }

// faultSwitch is the fault set as the admin API drives it.
type faultSwitch interface {
	// faultStatus is the drop set in force and the frames it dropped.
	faultStatus() FaultsStatus
	// setDrop replaces the drop set and returns the new status.
	setDrop(peers []string) FaultsStatus
}

// agentFaults is the agent's faultSwitch: its fault set and the transport
// that counts the frames it dropped.
type agentFaults struct {
	set *faultSet
	tr  *transport.Transport
	log *slog.Logger
}

func (f agentFaults) faultStatus() FaultsStatus {
	return FaultsStatus{Drop: f.set.list(), Dropped: f.tr.Stats().FaultDrops}
}

func (f agentFaults) setDrop(peers []string) FaultsStatus {
	f.set.set(peers)
	f.log.Warn("test faults replaced", "drop", f.set.list())
	return f.faultStatus()
}

// testFaults implements adminBackend: the fault switch when the agent runs
// with TestHooks.Faults.
func (a *Agent) testFaults() faultSwitch {
	if !a.hooks.Faults || a.faults == nil {
		return nil
	}
	return agentFaults{set: a.faults, tr: a.tr, log: a.log}
}

// faultRoutes are the fault endpoints, when the agent has a fault switch
// (TestHooks.Faults; openapi.json leaves them out).
func (s *apiServer) faultRoutes() []route {
	f := s.b.testFaults()
	if f == nil {
		return nil
	}
	return []route{
		{"GET /v1/test/faults", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, f.faultStatus())
		})},
		{"POST /v1/test/faults", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req FaultsRequest
			if err := s.decodeBody(w, r, "test faults", &req); err != nil {
				writeError(w, statusOf(err), err)
				return
			}
			writeJSON(w, http.StatusOK, f.setDrop(req.Drop))
		})},
	}
}
