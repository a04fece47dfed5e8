package transport

import (
	"net"
	"sync/atomic"
)

// budget is the node's memory budget for partially received messages,
// shared by every inbound connection (Config.MaxReassemblySize). A message
// reserves capacity before it allocates it and gives it back once it has
// been delivered or its connection failed.
type budget struct {
	limit int
	used  atomic.Int64
}

// reserve takes n bytes, or reports false (taking nothing) when that would
// pass the limit.
func (b *budget) reserve(n int) bool {
	for {
		used := b.used.Load()
		if used+int64(n) > int64(b.limit) {
			return false
		}
		if b.used.CompareAndSwap(used, used+int64(n)) {
			return true
		}
	}
}

// release gives back n bytes reserve took.
func (b *budget) release(n int) { b.used.Add(-int64(n)) }

// inUse is the number of bytes reserved now.
func (b *budget) inUse() int { return int(b.used.Load()) }

// What admit decided about an inbound connection.
const (
	admitted = iota
	shutDown // the transport is shut down
	overMaxConns
	overMaxConnsPerHost
)

// admit counts an accepted connection from host against Config.MaxConns
// and Config.MaxConnsPerHost and tracks it for shutdown. It reports
// admitted, or why the caller must close the connection at once; an
// admitted connection is given back with leave.
func (t *Transport) admit(raw net.Conn, host string) int {
	t.connMu.Lock()
	defer t.connMu.Unlock()
	switch {
	case t.killed:
		return shutDown
	case t.inbound >= t.cfg.MaxConns:
		return overMaxConns
	case t.perHost[host] >= t.cfg.MaxConnsPerHost:
		return overMaxConnsPerHost
	}
	t.inbound++
	t.perHost[host]++
	t.conns[raw] = struct{}{}
	return admitted
}

// leave forgets an admitted inbound connection the caller has closed.
func (t *Transport) leave(raw net.Conn, host string) {
	t.connMu.Lock()
	defer t.connMu.Unlock()
	t.inbound--
	if t.perHost[host]--; t.perHost[host] <= 0 {
		delete(t.perHost, host)
	}
	if t.conns != nil {
		delete(t.conns, raw)
	}
}

// inboundConns is the number of admitted inbound connections.
func (t *Transport) inboundConns() int {
	t.connMu.Lock()
	defer t.connMu.Unlock()
	return t.inbound
}

// remoteHost is the IP a connection comes from.
func remoteHost(c net.Conn) string {
	addr := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
