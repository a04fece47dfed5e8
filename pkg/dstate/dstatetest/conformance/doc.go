// Package conformance holds the suites an adapter runs from its own tests to
// show it keeps dstate's contracts: [Runtime] checks a dstate.ActorRuntime
// (ordering, backpressure, stop, timers, groups, panics, and a pkg/node host
// whose state callbacks panic).
//
// The suites need package testing, so they live apart from dstatetest: a
// program that links dstatetest for its simulation does not link the test
// framework.
package conformance
