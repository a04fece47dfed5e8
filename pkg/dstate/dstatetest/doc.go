// Package dstatetest provides test support for dstate and its users: a
// controllable [TestClock], in-memory and failing persistence, a manually
// driven [TestClusterEvents], example states, the [RuntimeConformance] suite
// every ActorRuntime must pass, and a deterministic simulated cluster of
// engines over an in-memory network with faults ([SimCluster]).
package dstatetest
