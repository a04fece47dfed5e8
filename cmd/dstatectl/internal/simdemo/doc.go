// Package simdemo renders a walk through a simulated dstate cluster for
// `dstatectl demo`: five nodes replicate a counter over a lossy, seeded
// network (dstatetest.NewExampleSimCluster), one node crashes and comes back with a
// new incarnation, and tables show every node's view of every other node
// converging step by step. The output is a pure function of the seed.
package simdemo
