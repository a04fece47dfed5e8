// Package transport carries frames between nodes over TCP, optionally
// secured with TLS. [Transport] implements [dstate.Transport] and
// its optional [dstate.LinkNotifier], [dstate.FrameLender] and
// [dstate.BatchLender].
//
// # Connections
//
// Each node dials one connection to every peer named by [Transport.SetPeer]
// and sends that peer's frames over it, in order; connections a node
// accepts only deliver frames. A peer's frames wait in a bounded queue
// (Config.QueueSize) drained by one writer goroutine, which writes every
// frame queued at that moment through one buffer and flushes once, so a
// burst costs few system calls. A frame that comes alone (nothing pending
// for the peer, the writer idle, no other direct write in the last 50 µs,
// plain TCP, up to 16 KiB) is written by Send itself, which saves the
// writer's wake-up. That write is one system call on the non-blocking
// socket and never waits: what a full socket did not take is left to the
// writer, which sends it before anything else. It sets no deadline, so it
// leaves no timer behind to wake the process later. [Transport.Send] never
// blocks: it fails
// with [ErrQueueFull] when the queue is full and [ErrUnknownPeer] when the
// peer is unknown. When a connection fails the writer redials with
// exponential backoff and full jitter between Config.ReconnectBackoffMin
// and ReconnectBackoffMax; frames queued meanwhile stay queued and are sent
// once it reconnects (frames being written when a connection breaks may be
// lost, which the protocol above tolerates). A dead peer only fills its own
// queue.
//
// Each accepted connection (up to the caps under Limits below) has a reader
// goroutine that calls the deliver
// function given to [Transport.Start] once per frame, with the sender's node
// ID from the handshake and a freshly allocated frame. With
// [Transport.StartLending] (the optional [dstate.FrameLender]) the frame is
// lent instead: a frame the receiver does not keep is read into again, so a
// connection reads its messages into one buffer. With
// [Transport.StartLendingBatches] (the optional [dstate.BatchLender]) every
// frame already in the connection's read buffer is lent in one call, so the
// receiver can handle a run of messages together.
//
// # Wire format
//
// A connection starts with a handshake; all integers are big-endian and
// strings are a uint16 length followed by the bytes:
//
//	hello:   "DSTT" | version uint16 | 0x01 | cluster name | node ID
//	refusal: "DSTT" | version uint16 | 0x02 | code uint8 | reason
//
// The dialer sends a hello; the acceptor answers with its own hello or with
// a refusal (code 1: protocol version, 2: cluster name, 3: node ID) and
// closes. The acceptor refuses a different [ProtocolVersion] or cluster
// name, and an empty node ID, one longer than [MaxIDLen] bytes or equal to
// its own. The dialer checks the acceptor's hello the same way and also
// that it reached the node ID it dialed. Both sides log the failure, count
// it in [Stats].HandshakeFailures and report a [*HandshakeError] whose
// dialer-side text carries the acceptor's reason:
//
//	transport: handshake with 127.0.0.1:7946 refused: cluster name "b" does not match "a"
//
// The hello layout is the same for every protocol version, so nodes of
// different versions can always refuse each other clearly.
//
// After the handshake, the dialer sends messages as frames: a uint32 length
// and that many bytes. A message longer than Config.MaxFrameSize (a large
// snapshot, say) is sent as several frames whose length has the top bit
// set on all but the last, and the receiver joins them: large messages are
// fragmented, never refused, up to Config.MaxMessageSize. Send refuses a
// longer message; an inbound frame over MaxFrameSize, or fragments adding
// up to more than MaxMessageSize, close the connection as soon as the
// length is read (nothing is allocated for the excess), with a logged and
// counted error.
//
// A dialer with nothing to send for Config.KeepaliveInterval sends a
// keepalive: the 4-byte header 0x80000000, an empty fragment, which the
// receiver skips between messages. (A receiver that predates keepalives
// joins the empty fragment to the next message, which leaves it as it
// was, so no protocol version change is needed.)
//
// # Limits on what a remote can hold
//
// Every inbound connection is bounded in time and memory, so that peers
// that connect and stay silent, send slowly or never finish a message
// cannot exhaust the node:
//
//   - Config.MaxConns and MaxConnsPerHost (per remote IP) bound the inbound
//     connections open at once, in any stage; one over a cap is closed as
//     soon as it is accepted, before a goroutine or buffer exists for it.
//   - Config.HandshakeTimeout bounds the TLS and transport handshakes.
//   - Config.IdleTimeout closes a connection that delivers nothing, not
//     even a keepalive, for that long. A dialer's keepalives keep its
//     connection open through quiet periods, so replication is not
//     disturbed: there is no reconnect, and no frame in flight to lose.
//   - Config.ReadTimeout bounds a frame once its header has arrived: it
//     gets ReadTimeout for each started MiB it announces, however its
//     bytes trickle in.
//   - Config.MaxReassemblySize is one memory budget for the messages being
//     received on all connections together. A message reserves its buffer
//     from it before allocating (the buffer grows as bytes arrive, so what
//     is reserved is about what arrived) and gives it back once
//     delivered. The connection whose message would pass the budget is
//     closed at once rather than made to wait, which keeps a node under
//     attack simple to reason about; a legitimate sender resends on its
//     next connection whatever it had not finished writing. The budget is
//     at least MaxMessageSize, so one message of the largest size fits.
//     Messages of one frame of at most 64 KiB are not charged (MaxConns
//     bounds them), so small messages pass while the budget is full; large
//     ones can be kept out for as long as slow senders hold it, which
//     ReadTimeout bounds per frame.
//   - Config.WriteTimeout bounds each write to a peer, so a peer that stops
//     reading costs one queue, not a stuck writer.
//
// Each refusal and timeout is counted in [Stats] and logged at most once
// per remote and kind per Config.LogInterval.
//
// # TLS
//
// When Config.TLS is set, the listener and every dial use it: one config
// serves both roles (Certificates, plus ClientAuth and ClientCAs for mutual
// TLS on the server side; RootCAs on the client side). A TLS failure is a
// handshake failure like any other.
//
// # Closing
//
// [Transport.Close] stops accepting and refuses further Sends, lets every
// writer flush its queue until the context is done, then closes all
// connections and waits for every goroutine of the transport.
package transport
