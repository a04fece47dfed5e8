package raftpersist

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/dstate-go/dstate/pkg/dstate"
)

// serveConn answers forwarding requests from node peer on c until it
// fails or closes. It runs on a mux goroutine.
func (s *Store) serveConn(c net.Conn, peer string) {
	defer c.Close()
	from := &forwarder{id: dstate.NodeID(peer), remote: c.RemoteAddr()}
	for {
		body, err := readFrame(c, s.cfg.MaxFrameBytes)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) && !s.isClosed() && !isEOF(err) {
				s.log.Debug("forwarding connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		if err := writeFrame(c, s.handleRequest(s.closeCtx, from, body)); err != nil {
			return
		}
	}
}

// handleRequest serves one request body, forwarded by another node (from)
// or made by this node itself (from nil), and returns the response body.
// A forwarded save or membership change is first authorized (see
// authorize.go).
func (s *Store) handleRequest(ctx context.Context, from *forwarder, body []byte) []byte {
	r := &reader{b: body}
	typ := r.byte("request type")
	if r.err != nil {
		return errorResponse(statusError, r.err.Error())
	}
	switch typ {
	case reqApply:
		timeout := time.Duration(r.uvarint("timeout")) * time.Millisecond
		if r.err != nil {
			return errorResponse(statusError, r.err.Error())
		}
		return s.handleApply(ctx, from, timeout, r.b)
	case reqReadIndex:
		timeout := time.Duration(r.uvarint("timeout")) * time.Millisecond
		if r.err != nil {
			return errorResponse(statusError, r.err.Error())
		}
		if resp := s.notLeader(); resp != nil {
			return resp
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		idx, err := s.leaderReadIndex(ctx)
		if err != nil {
			return s.raftErrorResponse(err)
		}
		return binary.AppendUvarint([]byte{statusOK}, idx)
	case reqStats:
		return encodeStats(s.localStats())
	case reqMembership:
		kind := r.byte("membership kind")
		id := r.string("server id")
		addr := r.string("server address")
		timeout := time.Duration(r.uvarint("timeout")) * time.Millisecond
		if r.err != nil {
			return errorResponse(statusError, r.err.Error())
		}
		if resp := s.authorizeMembership(from, kind, id); resp != nil {
			return resp
		}
		if resp := s.notLeader(); resp != nil {
			return resp
		}
		var f raft.IndexFuture
		switch kind {
		case memberAddVoter:
			f = s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
		case memberAddNonvoter:
			f = s.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
		case memberRemove:
			f = s.raft.RemoveServer(raft.ServerID(id), 0, timeout)
		default:
			return errorResponse(statusError, "unknown membership change")
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := waitFuture(ctx, f); err != nil {
			return s.raftErrorResponse(err)
		}
		return []byte{statusOK}
	default:
		return errorResponse(statusError, "unknown request type")
	}
}

// handleApply applies a save command on the leader.
func (s *Store) handleApply(ctx context.Context, from *forwarder, timeout time.Duration, cmd []byte) []byte {
	var n int
	if from == nil {
		// This node's own batch, encoded by commit: only its size is
		// needed (the state machine decodes and checks it).
		var err error
		if n, err = saveCommandCount(cmd); err != nil {
			return errorResponse(statusError, err.Error())
		}
	} else {
		envs, err := decodeSaveCommand(cmd)
		if err != nil {
			return errorResponse(statusError, err.Error())
		}
		if resp := s.authorizeSaves(from, envs); resp != nil {
			return resp
		}
		n = len(envs)
	}
	if resp := s.notLeader(); resp != nil {
		return resp
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	f := s.raft.Apply(cmd, timeout)
	if err := waitFuture(ctx, f); err != nil {
		return s.raftErrorResponse(err)
	}
	ar, ok := f.Response().(*applyResponse)
	switch {
	case !ok:
		return errorResponse(statusError, "unexpected state machine response")
	case ar.err != nil:
		return errorResponse(statusError, ar.err.Error())
	case len(ar.results) != n:
		return errorResponse(statusError, "state machine answered for the wrong number of saves")
	}
	resp := []byte{statusOK}
	resp = binary.AppendUvarint(resp, uint64(len(ar.results)))
	for _, res := range ar.results {
		f := byte(0)
		if res.fenced {
			f = 1
		}
		resp = append(resp, f)
		resp = binary.AppendUvarint(resp, res.stored.Incarnation)
		resp = binary.AppendUvarint(resp, res.stored.Age)
	}
	return resp
}

func decodeApplyResults(payload []byte, n int) ([]saveResult, error) {
	r := &reader{b: payload}
	if c := r.uvarint("result count"); r.err == nil && c != uint64(n) {
		r.fail("%d results for %d saves", c, n)
	}
	res := make([]saveResult, n)
	for i := 0; i < n && r.err == nil; i++ {
		res[i].fenced = r.byte("fenced") == 1
		res[i].stored.Incarnation = r.uvarint("incarnation")
		res[i].stored.Age = r.uvarint("age")
	}
	return res, r.err
}

// notLeader returns a statusNotLeader response, or nil when this node is
// the leader.
func (s *Store) notLeader() []byte {
	if s.raft.State() == raft.Leader {
		return nil
	}
	addr, _ := s.raft.LeaderWithID()
	return errorResponse(statusNotLeader, string(addr))
}

// raftErrorResponse maps an error of a raft future to a response: errors
// after which another attempt may succeed are statusUnavailable.
func (s *Store) raftErrorResponse(err error) []byte {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		addr, _ := s.raft.LeaderWithID()
		return errorResponse(statusNotLeader, string(addr))
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrAbortedByRestore), errors.Is(err, raft.ErrRaftShutdown),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrCantBootstrap),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return errorResponse(statusUnavailable, err.Error())
	default:
		return errorResponse(statusError, err.Error())
	}
}

func errorResponse(status byte, msg string) []byte {
	return appendString([]byte{status}, msg)
}

// parseResponse splits a response body into its OK payload or a
// *remoteError.
func parseResponse(addr string, resp []byte) ([]byte, error) {
	r := &reader{b: resp}
	status := r.byte("status")
	if r.err == nil && status == statusOK {
		return r.b, nil
	}
	msg := r.string("message")
	if r.err != nil {
		return nil, r.err
	}
	return nil, &remoteError{addr: addr, status: status, msg: msg}
}

// waitFuture waits for f or ctx. A future resolves on commit, lost
// leadership or shutdown, so the helper goroutine ends; the exception is a
// future raft still held in its apply queue when it shut down, which raft
// never resolves (at most MaxAppendEntries of them, once, at Close).
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
