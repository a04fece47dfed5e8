package dstate

import (
	"math"
	"time"
)

// peerState is the engine's sync record of one peer. Times are monotonic
// instants relative to the engine's epoch (see Engine.mono; 0 is never)
// and the latency is in milliseconds. One is held per peer and state, in
// the peer's view slot, so it is kept at 8 bytes (the slot at 16): what
// only a peer in trouble has is kept in the engine's side maps, found
// through a flag, so that a healthy peer costs no map operation; the time
// of the last accepted update is the view's own (peerSynced, see
// Engine.lastSync), and that of the last message the same unless a later
// one was not applied (peerAttemptAside, see Engine.attempted).
type peerState struct {
	latencyMs int32
	// gaps counts the inbound deltas that skipped ages, modulo 2¹⁶; the
	// overflow is in the engine's gapsOver (see Engine.gap).
	gaps  uint16
	flags peerFlags
}

// peerFlags are the marks of a peerState.
type peerFlags uint8

const (
	// peerFailed: the membership layer reported the peer failed and
	// nothing has been heard from it since. It is not pulled (see
	// Engine.Query).
	peerFailed peerFlags = 1 << iota
	// peerUnresponsive: a snapshot request to the peer went unanswered
	// for a whole pull timeout and nothing has been heard from it since.
	// Queries do not wait for it.
	peerUnresponsive
	// peerFailing: the record counts consecutive failures; their number
	// and the last error are in the engine's peerErrs.
	peerFailing
	// peerPulling: a snapshot request is outstanding; when it was sent is
	// in the engine's pulls.
	peerPulling
	// peerSynced: the last accepted update is the one the view holds, so
	// its time is the view's syncedNs. Set with each accepted update; the
	// view is published first.
	peerSynced
	// peerSyncAside: the time of the last accepted update is in the
	// engine's syncAside: the view it was accepted into was dropped
	// (DropAndWait), and a placeholder may hold the slot since.
	peerSyncAside
	// peerAttemptAside: the last message from the peer came after the
	// last accepted update (it was not applied); its time is in the
	// engine's attempts. Without it, the last message is the last update.
	peerAttemptAside
)

func (p *peerState) failed() bool       { return p.flags&peerFailed != 0 }
func (p *peerState) unresponsive() bool { return p.flags&peerUnresponsive != 0 }
func (p *peerState) failing() bool      { return p.flags&peerFailing != 0 }
func (p *peerState) pulling() bool      { return p.flags&peerPulling != 0 }

// peerErr is the failure count and last error of a peer whose record has
// failures (peerFailing).
type peerErr struct {
	n   uint32
	msg string
}

// pull is the outstanding snapshot request to a peer (peerPulling).
type pull struct {
	at int64 // when it was sent (Engine.mono)
	// askedPending: it was sent while the view had a pending generation,
	// so its answer says where the owner stands.
	askedPending bool
}

// mono turns an instant of the engine's clock into the compact form kept in
// peerState: nanoseconds since the engine's epoch, never 0 (0 is never).
func (e *Engine[S, V]) mono(t time.Time) int64 { return monoOf(e.since(t)) }

// monoOf turns d nanoseconds since the epoch (a view's syncedNs) into the
// compact form of mono.
func monoOf(d int64) int64 {
	if d >= 0 {
		d++
	}
	return d
}

// since returns t as a view's syncedNs: nanoseconds since the engine's
// epoch (see Views.SyncedAt).
func (e *Engine[S, V]) since(t time.Time) int64 { return int64(t.Sub(e.epoch)) }

// instant is the inverse of mono; the zero Time for 0.
func (e *Engine[S, V]) instant(m int64) time.Time {
	switch {
	case m == 0:
		return time.Time{}
	case m > 0:
		return e.epoch.Add(time.Duration(m - 1))
	}
	return e.epoch.Add(time.Duration(m))
}

// peer returns node's sync record, creating it if needed. The record lives
// in the node's view slot; a node without a view (none received yet, or
// dropped by DropAndWait) keeps it in orphans, and the first call after
// its view appears moves it into the slot. A pointer returned while the
// node had no view stays valid until the next call to peer for that node.
func (e *Engine[S, V]) peer(node NodeID) *peerState {
	o := e.orphans[node]
	if s := e.views.slot(node); s != nil {
		if o != nil {
			s.peer = *o
			delete(e.orphans, node)
		}
		return &s.peer
	}
	if o == nil {
		o = &peerState{}
		e.orphans[node] = o
	}
	return o
}

// peerOf returns node's sync record without creating or moving it, or nil.
func (e *Engine[S, V]) peerOf(node NodeID) *peerState {
	if o := e.orphans[node]; o != nil {
		return o
	}
	if s := e.views.slot(node); s != nil {
		return &s.peer
	}
	return nil
}

// dropView removes node's view but keeps its sync record, and the time of
// the last update accepted into the view (see lastSync).
func (e *Engine[S, V]) dropView(node NodeID) {
	s := e.views.slot(node)
	if s == nil {
		return
	}
	p := e.orphans[node] // newer than the slot's, if any (see peer)
	if p == nil {
		c := s.peer
		p = &c
		e.orphans[node] = p
	}
	if p.flags&peerSynced != 0 {
		if e.syncAside == nil {
			e.syncAside = make(map[NodeID]int64)
		}
		e.syncAside[node] = monoOf(s.Load().syncedNs)
		p.flags = p.flags&^peerSynced | peerSyncAside
	}
	e.views.remove(node)
}

// synced records in node's record p that its view now holds the last
// accepted update, published with the time of this update.
func (e *Engine[S, V]) synced(node NodeID, p *peerState) {
	if p.flags&peerSyncAside != 0 {
		delete(e.syncAside, node)
	}
	p.flags = p.flags&^peerSyncAside | peerSynced
}

// lastSync returns when node (of record p) last had an update accepted, in
// the compact form of mono: the time of its view (peerSynced), or of the
// view dropped since (peerSyncAside); 0 if never.
func (e *Engine[S, V]) lastSync(node NodeID, p *peerState) int64 {
	switch {
	case p.flags&peerSynced != 0:
		if v := e.views.get(node); v != nil {
			return monoOf(v.syncedNs)
		}
	case p.flags&peerSyncAside != 0:
		return e.syncAside[node]
	}
	return 0
}

// attempted records that a message from node arrived at now. Nearly every
// message is applied, at the same instant (see applied), which makes the
// time of the last message that of the last update: so the instant waits
// in the engine (att) until the message is done with, and is set aside
// only if it was not applied (commitAttempt, at the end of HandleWire or
// at the next message), so that the hot path writes no map.
func (e *Engine[S, V]) attempted(node NodeID, now time.Time) {
	if e.att.set {
		e.commitAttempt()
	}
	e.att = attempt{node: node, at: e.mono(now), set: true}
}

// attempt is a message's arrival not recorded yet (see attempted).
type attempt struct {
	node NodeID
	at   int64 // see mono
	set  bool
}

// commitAttempt sets the waiting arrival aside: its message was not
// applied.
func (e *Engine[S, V]) commitAttempt() {
	a := e.att
	e.att = attempt{}
	if !a.set {
		return
	}
	p := e.peerOf(a.node)
	if p == nil {
		return
	}
	if e.attempts == nil {
		e.attempts = make(map[NodeID]int64)
	}
	e.attempts[a.node] = a.at
	p.flags |= peerAttemptAside
}

// flushAttempt commits the waiting arrival, if any (deferred by HandleWire).
func (e *Engine[S, V]) flushAttempt() {
	if e.att.set {
		e.commitAttempt()
	}
}

// attemptApplied records that node's (of record p) last message was
// applied at the instant it arrived: the last message is the last update.
func (e *Engine[S, V]) attemptApplied(node NodeID, p *peerState) {
	if e.att.set && e.att.node == node {
		e.att = attempt{}
	}
	if p.flags&peerAttemptAside != 0 {
		p.flags &^= peerAttemptAside
		delete(e.attempts, node)
	}
}

// lastAttempt returns when the last message from node (of record p)
// arrived, in the compact form of mono (0: never).
func (e *Engine[S, V]) lastAttempt(node NodeID, p *peerState) int64 {
	switch {
	case e.att.set && e.att.node == node:
		return e.att.at
	case p.flags&peerAttemptAside != 0:
		return e.attempts[node]
	}
	return e.lastSync(node, p)
}

func (e *Engine[S, V]) failure(node NodeID, reason string) {
	p := e.peer(node)
	if e.peerErrs == nil {
		e.peerErrs = make(map[NodeID]peerErr)
	}
	pe := peerErr{n: 1, msg: reason}
	if p.failing() {
		pe.n = e.peerErrs[node].n + 1
	}
	p.flags |= peerFailing
	e.peerErrs[node] = pe
}

// askedPending reports whether node (of record p) has an outstanding
// snapshot request sent while its view had a pending generation: its
// answer then says where the owner stands (see handleSnapshot).
func (e *Engine[S, V]) askedPending(node NodeID, p *peerState) bool {
	return p.pulling() && e.pulls[node].askedPending
}

// gap counts an age gap in node's record p: modulo 2¹⁶ there, the overflow
// in gapsOver.
func (e *Engine[S, V]) gap(node NodeID, p *peerState) {
	if p.gaps < math.MaxUint16 {
		p.gaps++
		return
	}
	p.gaps = 0
	if e.gapsOver == nil {
		e.gapsOver = make(map[NodeID]uint64)
	}
	e.gapsOver[node] += math.MaxUint16 + 1
}
