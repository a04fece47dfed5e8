// Package agent runs a whole dstate node from one [Config]: the goroutine
// actor runtime (pkg/gosched), the TCP transport (pkg/transport),
// membership from serf (pkg/serfevents), Raft durability on servers
// (pkg/raftpersist), Local durability in an fsynced file (pkg/localpersist),
// the host (pkg/node) with the built-in states (kv, durable-kv, load), and
// the HTTP admin API (api.go lists its endpoints and documents).
//
// It is what `dstatectl agent` runs, and what an application embeds when it
// wants a node without assembling the parts: [Start] a node, [Register] or
// [RegisterDelta] the application's own states (the admin API lists and
// dumps them too), and [Agent.Stop] to leave the cluster gracefully.
// [LocalConfig] is a node on free loopback ports for tests and examples,
// [Agent.Addrs] the addresses it bound, [Agent.WaitReady] waits until it
// serves reads and writes, and [WithRuntime] runs its states on the
// application's own actor runtime (the proto.actor adapter's, say).
//
// The package is split by concern: [Agent] assembles the components and
// runs their lifecycle (agent.go) and offers the operations (members, kv,
// Raft, keyring, leave; every one that may block takes a context); the
// built-in states and their background loops are a type of their own
// (builtins.go, durable.go, testload.go); the admin HTTP server is another
// (apiServer, http.go), which reaches the agent only through the interface
// adminBackend. [Config] holds what an operator sets; switches for tests
// (fault injection, a generated load) are [TestHooks], passed to [Start]
// with [WithTestHooks] and never read from a config file.
//
// Raft membership follows gossip: a server advertises its Raft address in
// its serf tags; with bootstrap-expect N the servers bootstrap once N of them
// see each other, and the leader adds servers that join and removes those
// that leave gracefully. Until Raft has a leader, Raft-durable states (such
// as durable-kv) are not yet registered and answer "not ready".
//
// The admin API binds to loopback unless an admin token is set; the token is
// compared in constant time. It refuses what a web page in the local user's
// browser could send it (a foreign Host header without a token, a
// cross-origin Sec-Fetch-Site or Origin, a state-changing call without
// Content-Type application/json: http_guard.go) and bounds what slow or
// idle clients may hold (read, write and idle timeouts, connection caps
// per listener and per client address: http_conns.go). Every error is a
// 4xx or 5xx with a JSON body naming what was wrong. It also serves a
// read-only dashboard at /ui/ (ui.go): static files, embedded, that read
// the same API from the browser.
package agent
