// Package node is the framework-agnostic host of dstate engines: it runs
// each registered state's engine inside one actor of a [dstate.ActorRuntime],
// performs the engine's actions on a [dstate.Transport] (through
// [dstate.Dispatch]), drives periodic sync, change-feed and delayed-send
// timers, feeds the engines membership events, persists each mutation
// before publishing it (through StateOptions.Persistence, or the
// [dstate.EnvelopeStore] that Config.Stores names for the state's
// durability), and batches the change
// notices of all states into one message per interval.
//
// Users hold typed handles returned by [Register] and [RegisterDelta]:
//
//	n, _ := node.New(node.Config{ID: "n1", Runtime: rt, Events: ev, Transport: tr})
//	load, _ := node.Register(ctx, n, LoadState{}, node.StateOptions[Load]{})
//	load.Mutate(ctx, func(l *Load) { l.CPU = 0.4 })
//	load.Query(ctx, time.Second, func(v dstate.Views[Load]) { ... })
//	for ch, err := range load.Watch(ctx, node.WatchOptions{}) { ... }
//
// Query reads every node's view with a bound on staleness; [Shard.Watch]
// reports the views as they stand, then every change.
//
// Peers' transport addresses come from the [TransportTag] tag of their
// membership events ([dstate.ClusterEvents]). The interfaces the node's
// adapters implement (runtime, membership, persistence, transport) are all
// in package dstate, so an adapter never imports this package.
package node
