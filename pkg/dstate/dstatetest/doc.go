// Package dstatetest provides test support for dstate and its users: a
// controllable [TestClock] (the one fake clock, also the timer clock of the
// actor runtimes' tests), in-memory and failing persistence, a manually
// driven [TestClusterEvents], example states, and a deterministic simulated
// cluster of engines over an in-memory network with faults ([SimCluster]).
// It does not import package testing, so a program may link it for the
// simulation; the suites an adapter runs from its tests are in the
// conformance subpackage.
package dstatetest
