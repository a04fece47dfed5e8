// Command dstatectl runs and inspects dstate clusters: `dstatectl agent`
// runs a node, `dstatectl demo` shows a simulated cluster at work,
// `dstatectl tls` makes certificates, `dstatectl bench` measures, and the
// other commands (bootstrap, join, leave, force-leave, members, dump,
// watch, get, put, del, health, metrics, raft, keyring) talk to a running
// agent through its HTTP admin API. The commands live in
// cmd/dstatectl/internal/cli; `dstatectl --help` lists them with an example
// each.
package main
