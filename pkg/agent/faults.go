package agent

import (
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// Test-only fault injection. With Config.TestFaults the agent serves
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

// faultRoutes adds the fault endpoints when the agent runs with TestFaults.
func (a *Agent) faultRoutes(mux *http.ServeMux) {
	if !a.cfg.TestFaults || a.faults == nil {
		return
	}
	status := func() FaultsStatus { return FaultsStatus{Drop: a.faults.list(), Dropped: a.tr.Stats().FaultDrops} }
	mux.HandleFunc("GET /v1/test/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, status())
	})
	mux.HandleFunc("POST /v1/test/faults", func(w http.ResponseWriter, r *http.Request) {
		var req FaultsRequest
		if err := a.decodeBody(w, r, &req); err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		a.faults.set(req.Drop)
		a.log.Warn("test faults replaced", "drop", a.faults.list())
		writeJSON(w, http.StatusOK, status())
	})
}
