// Package serfevents provides cluster membership for dstate from
// hashicorp/serf: a [Membership] is a [dstate.ClusterEvents] backed by a
// serf instance that it creates from a [Config] and owns.
//
// # Events
//
// serf's member events become dstate events: join → NodeJoined (with the
// node's tags), graceful leave → NodeLeft, a node that stops answering →
// NodeFailed (after the failure detector's suspicion time, see
// [Timing.FailureDetectionTime]), a tag change → NodeUpdated, and a
// departed node forgotten after [Config.ReconnectTimeout] (failed) or
// [Config.TombstoneTimeout] (left) → NodeReaped. A node that restarts
// under the same NodeID is NodeJoined again, also when it comes back before
// its peers declared it failed (its [TagBoot] changes), so the host sees
// its new incarnation.
//
// The Membership drains serf's event channel itself and never blocks serf.
// Each subscriber has its own goroutine and bounded queue and gets its
// events in order; a new subscriber first gets a NodeJoined for each member
// alive at that time (this node included: hosts ignore their own ID). A
// subscriber that falls behind loses events (counted, logged, and reported
// as a metric) instead of stalling gossip, and is resynced with the current
// members once it has caught up. See [Membership.Subscribe].
//
// # Tags
//
// Tags tell peers what they need before talking to a node: its transport
// address ([TagTransport], which pkg/node reads to reach the peer), its
// Raft address and role, its protocol version and its registered states
// with their wire versions ([EncodeStates]). [NodeTags] builds and parses
// them. All tags must fit in [MaxTagsSize] (512) bytes once encoded;
// [CheckTags] and [Membership.SetTags] return a *[TagsSizeError] otherwise.
//
// # Discovery and restarts
//
// A node joins through [Config.Seeds] (in the background, retrying) or
// [Membership.Join]; one reachable member is enough, gossip does the rest.
// With [Config.SnapshotPath] serf records the members it knows, and a node
// restarted with the same file rejoins them without seeds.
//
// # Encryption
//
// With [Config.Keys] or [Config.KeyFile] all gossip is encrypted; a node
// without a matching key cannot join, and [Membership.Join] then returns a
// *[JoinError] matching [ErrEncryption]. Keys rotate without a partition
// through [Membership.InstallKey], [Membership.UseKey] and
// [Membership.RemoveKey]. A key file is a JSON list of base64 keys (as serf
// writes its keyring file) or one base64 key per line, '#' comments
// allowed; the first key is the primary. See [ParseKeys].
//
// # Logs and metrics
//
// The Membership logs through [Config.Logger] (log/slog); serf's and
// memberlist's own log lines are bridged into it with their level (hclog's
// InferLevels, through the slog bridge raftpersist uses too) and a
// "component" attribute naming the library. Lines about a socket closed at
// shutdown are logged at Debug, and memberlist's lines about one seed of a
// join are left out: [Membership.Join] logs each failed round itself. serf
// and memberlist emit go-metrics (through
// github.com/hashicorp/go-metrics/compat); the Membership adds
// dstate.serfevents.events_dropped (raftpersist.EnablePrometheusMetrics
// exports them as dstate_serfevents_events_dropped_total and so on).
// [Membership.Stats] has the counters.
package serfevents
