package node

import "errors"

// ErrClosed is returned by calls on a closed node.
var ErrClosed = errors.New("node: closed")

// ErrNotDurable is returned by Shard.QueryDurable for a state whose
// durability is not shared by the cluster (only Raft is).
var ErrNotDurable = errors.New("node: the state is not durable in a store shared by the cluster")
