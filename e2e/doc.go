// Package e2e holds the multi-process end-to-end and chaos tests: they
// build the dstatectl binary once, run clusters of real agent processes on
// free loopback ports with temporary data dirs, and drive them only through
// the dstatectl command line and the agents' admin HTTP API.
//
// Run them with `make e2e` (a 60 s nemesis and the longer variants), or as
// part of `make test` (go test ./...), where they are bounded: a 10 s
// nemesis on 3 nodes. Environment:
//
//	E2E_NEMESIS=60s   how long the nemesis runs (default 10s)
//	E2E_SEED=123      replay a seeded schedule (default: time-based, printed)
//	E2E_FULL=1        5-node nemesis and every bootstrap order
//	E2E_RESULTS=file  append each measured duration to file (JSON lines)
//	DSTATE_SCREENSHOT=file  TestDashboard saves its picture of the
//	                  dashboard there (docs/dashboard.png)
//
// When a test fails, its agents' data dirs and logs are kept and their
// paths and the tail of each log are printed.
//
// The partition fault is a hook in the state transport (the agents' hidden
// --test-faults flag and POST /v1/test/faults): it drops state-replication
// frames only. Serf gossip and Raft still flow, so a "partitioned" node
// stays a live member and keeps its Raft vote; what is cut is replication
// of views and deltas.
package e2e
