// Command dstatectl runs and inspects dstate clusters: `dstatectl agent`
// runs a node, `dstatectl demo` starts a local 3-node cluster and shows it
// at work, and the other commands (members, dump, get, put, del, health,
// metrics, raft, bootstrap, join, leave, keyring, bench, version) talk to a
// running agent through its HTTP admin API. The commands live in
// cmd/dstatectl/internal/cli; `dstatectl --help` lists them with an example each.
package main
