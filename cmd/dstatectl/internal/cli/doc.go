// Package cli implements the dstatectl command line: one file per command,
// with injected writers so every command is testable.
//
// Every command except agent, tls, demo, bench and version talks to a running
// agent through its HTTP admin API, whose contract (endpoints and JSON
// documents) is in pkg/agent's api.go. The global options, given before the
// command, say where and how:
//
//	--addr ADDR        the agent's admin API, host:port or a URL (default 127.0.0.1:7380, $DSTATE_ADDR)
//	--token TOKEN      bearer token the agent requires ($DSTATE_TOKEN or $DSTATE_ADMIN_TOKEN)
//	--token-file FILE  read the token from FILE, trimmed, when --token is not set ($DSTATE_TOKEN_FILE)
//	--format FORMAT    table (aligned, for people) or json (indented API documents, for scripts)
//	--timeout DURATION bound on every request (default 10s)
//
// Commands: agent, bootstrap, join, leave, force-leave, members, dump,
// watch, get, put, del, health, metrics, raft peers|status|remove-peer,
// keyring list|install|use|remove,
// tls ca|cert (the certificates for mutual TLS, made locally with
// internal/tlsgen; no agent involved), demo, bench and version.
//
// [Main] returns the exit status: 0 on success; 2 on a usage error (an
// unknown command or flag, a wrong number of arguments, a malformed value,
// --format other than table or json); 1 on any other failure, including an
// unreachable agent, an error answer from it, an unhealthy node (health)
// and a key that is not found (get); 3 when health finds the node
// degraded.
//
// Tests run the commands in-process against a fake agent and compare their
// help and output with the golden files in testdata/; go test -update
// rewrites them.
package cli
