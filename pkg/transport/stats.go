package transport

import "sync/atomic"

// Stats is a snapshot of a transport's counters since New (and of two
// gauges, at the end). Byte counts are
// frame bytes, without the 4-byte length prefixes.
type Stats struct {
	FramesOut uint64 // frames written and flushed to a peer connection
	FramesIn  uint64 // frames read and delivered
	BytesOut  uint64
	BytesIn   uint64
	// QueueDrops counts frames Send refused with ErrQueueFull.
	QueueDrops uint64
	// FramesLost counts frames Send accepted that were never written: lost
	// with a broken connection, dropped by RemovePeer, or still queued when
	// Close gave up.
	FramesLost uint64
	// FaultDrops counts frames dropped by Config.FaultHook.
	FaultDrops uint64
	// Reconnects counts connections made to a peer after its first one.
	Reconnects uint64
	// DialFailures counts outbound TCP connects that failed.
	DialFailures uint64
	// HandshakeFailures counts failed handshakes (TLS or transport), on both
	// the dialing and the accepting side.
	HandshakeFailures uint64
	// OversizedFrames counts frames over MaxFrameSize: refused by Send or
	// announced by an inbound connection (which is then closed).
	OversizedFrames uint64
	// IdleTimeouts counts inbound connections closed after IdleTimeout
	// without a frame or keepalive.
	IdleTimeouts uint64
	// ReadTimeouts counts inbound connections closed because a frame did
	// not arrive within ReadTimeout per started MiB.
	ReadTimeouts uint64
	// WriteTimeouts counts outbound connections closed because a write did
	// not finish within WriteTimeout (a peer that stopped reading).
	WriteTimeouts uint64
	// KeepalivesOut and KeepalivesIn count keepalive frames sent on idle
	// outbound connections and received on inbound ones.
	KeepalivesOut uint64
	KeepalivesIn  uint64
	// ConnsRefused counts inbound connections closed at once because
	// MaxConns connections were open; HostConnsRefused those closed
	// because MaxConnsPerHost were open from the same host.
	ConnsRefused     uint64
	HostConnsRefused uint64
	// BudgetRefusals counts inbound connections closed because their
	// partial message would have taken the memory held by all partial
	// messages past MaxReassemblySize.
	BudgetRefusals uint64

	// InboundConns is the number of inbound connections open now (a gauge).
	InboundConns int
	// ReassemblyBytes is the memory partially received messages hold now,
	// out of MaxReassemblySize (a gauge).
	ReassemblyBytes int
}

// PeerStat describes one peer's outbound side.
type PeerStat struct {
	Addr      string // the address frames are sent to
	Connected bool   // an outbound connection is established
	QueueLen  int    // frames waiting to be written
	// LastError is the last dial, handshake or write error (nil after a
	// successful connect). Handshake failures are *HandshakeError.
	LastError error
}

// counters are the live, atomic counterparts of Stats.
type counters struct {
	framesOut, framesIn, bytesOut, bytesIn      atomic.Uint64
	queueDrops, framesLost, faultDrops          atomic.Uint64
	reconnects, dialFailures, handshakeFailures atomic.Uint64
	oversizedFrames                             atomic.Uint64
	idleTimeouts, readTimeouts, writeTimeouts   atomic.Uint64
	keepalivesOut, keepalivesIn                 atomic.Uint64
	connsRefused, hostConnsRefused              atomic.Uint64
	budgetRefusals                              atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		FramesOut:         c.framesOut.Load(),
		FramesIn:          c.framesIn.Load(),
		BytesOut:          c.bytesOut.Load(),
		BytesIn:           c.bytesIn.Load(),
		QueueDrops:        c.queueDrops.Load(),
		FramesLost:        c.framesLost.Load(),
		FaultDrops:        c.faultDrops.Load(),
		Reconnects:        c.reconnects.Load(),
		DialFailures:      c.dialFailures.Load(),
		HandshakeFailures: c.handshakeFailures.Load(),
		OversizedFrames:   c.oversizedFrames.Load(),
		IdleTimeouts:      c.idleTimeouts.Load(),
		ReadTimeouts:      c.readTimeouts.Load(),
		WriteTimeouts:     c.writeTimeouts.Load(),
		KeepalivesOut:     c.keepalivesOut.Load(),
		KeepalivesIn:      c.keepalivesIn.Load(),
		ConnsRefused:      c.connsRefused.Load(),
		HostConnsRefused:  c.hostConnsRefused.Load(),
		BudgetRefusals:    c.budgetRefusals.Load(),
	}
}
