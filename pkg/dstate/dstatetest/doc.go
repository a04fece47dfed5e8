// Package dstatetest provides test support for dstate and its users: a
// controllable [TestClock] (the one fake clock, also the timer clock of the
// actor runtimes' tests), in-memory and failing persistence, a manually
// driven [TestClusterEvents], example states, and a deterministic simulated
// cluster of engines over an in-memory network with faults ([SimCluster]).
// It does not import package testing, so a program may link it for the
// simulation; the suites an adapter runs from its tests are in the
// conformance subpackage.
//
// The simulation runs any state definition: [NewSimCluster] (a simple
// state) and [NewDeltaSimCluster] (a delta state) return a cluster typed
// by the state, to mutate it on a node and read every node's view of it;
// [NewExampleSimCluster] runs the example Counter and Gauges states. Every
// random decision (drops, duplicates, reordering, corruption, delays,
// membership delays) comes from the seed; partitions, per-link and
// per-kind faults ([SimInterceptor]), crashes, leaves, restarts with a
// chosen value or definition, and empty or one-node clusters are driven
// by the test, which can wait for convergence (Settle) or for nothing to
// be in flight (RunUntilIdle).
package dstatetest
