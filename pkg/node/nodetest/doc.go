// Package nodetest provides test support for users of pkg/node: the
// [LoopbackConformance] suite, which runs the host's core three-node
// scenarios over real loopback TCP on any dstate.ActorRuntime, so that a
// runtime other than pkg/gosched can show that a whole node works on it.
//
// A runtime's tests call it with a constructor of fresh runtimes:
//
//	func TestLoopback(t *testing.T) {
//		nodetest.LoopbackConformance(t, func(t *testing.T) dstate.ActorRuntime {
//			rt, err := myruntime.New(myruntime.Options{})
//			require.NoError(t, err)
//			t.Cleanup(rt.Close)
//			return rt
//		})
//	}
//
// The runtime runs on its real clock: the nodes' timers (periodic sync,
// change-feed flushes, pull timeouts) must fire by themselves. The suite
// waits by polling with deadlines, never by sleeping.
package nodetest
