// Package slogbridge is the one bridge from the hashicorp libraries' loggers
// to log/slog: [New] returns an hclog.Logger backed by an *slog.Logger, the
// logger raft and raft-boltdb take, and [StdLogger] the *log.Logger serf and
// memberlist take, obtained through that logger's StandardLogger with
// hclog's InferLevels, so a "[WARN] memberlist: …" line becomes a Warn
// record. Messages a remote peer can cause may be rate limited per message
// (internal/ratelog), so a peer sending garbage cannot flood the log.
package slogbridge
