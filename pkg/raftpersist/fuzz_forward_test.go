package raftpersist

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/dstate-go/dstate/internal/fuzzcheck"
	"github.com/dstate-go/dstate/pkg/dstate"
)

// Fuzz targets of the forwarding RPC: the leader's request handler, fed
// what a node that is not a voter could send after its prelude, and the
// follower's decoders of the leader's responses. No input may panic,
// decoding may allocate no more than a multiple of the input, and the
// handler must refuse what the node may not do (see authorize.go).

// fuzzPeer is the forwarding node of FuzzForwardRequest: admitted, not a
// voter.
const fuzzPeer = "fuzz"

// forwardRaftBudget is what a forwarded request that reaches Raft may
// allocate whatever its size: a read index or an apply is a Raft round
// (about 18 KB for a read index: the leadership check, its futures and
// channels), and the store's own goroutines allocate meanwhile. Sizes
// beyond it are bounded per input byte.
const forwardRaftBudget = 64 << 10

// allocTries is how often an input is measured before its allocations are
// blamed on it: the store's own goroutines allocate meanwhile.
const allocTries = 3

func FuzzForwardRequest(f *testing.F) {
	long := make([]byte, 300)
	fuzzcheck.AddBytes(f, [][]byte{
		saveBody(env("s", fuzzPeer, 1, 1, "own")),
		saveBody(env("s", fuzzPeer, 1, 2, "own"), env("s", fuzzPeer, 1, 1, "stale")),
		saveBody(env("s", "n0", 1<<62, 0, "forged")),
		saveBody(&dstate.StoredEnvelope{State: "big", Node: fuzzPeer, Generation: dstate.Generation{Incarnation: 2}, Data: long}),
		memberBody(memberAddVoter, fuzzPeer, "127.0.0.1:1"),
		memberBody(memberRemove, "n0", ""),
		memberBody(9, "x", ""),
		binary.AppendUvarint([]byte{reqReadIndex}, 2000),
		{reqReadIndex},
		{reqStats},
		{reqApply},
		{reqApply, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		append(binary.AppendUvarint([]byte{reqApply}, 1000), 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f),
		{reqMembership, memberAddVoter, 0xff, 0xff, 0xff, 0xff, 0x0f},
		{0},
		{99},
	})
	c := newCluster(f, 1, nil)
	s := c.node(0)
	c.leader()
	from := &forwarder{id: fuzzPeer, remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 1}}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return // readFrame never returns an empty body
		}
		var resp []byte
		serve := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			resp = s.handleRequest(ctx, from, in)
		}
		over := ""
		for range allocTries {
			if over = fuzzcheck.Over(forwardRaftBudget, len(in), 64, serve); over == "" {
				break
			}
		}
		if over != "" {
			t.Fatalf("handleRequest %s", over)
		}
		if len(resp) == 0 {
			t.Fatal("empty response")
		}
		payload, err := parseResponse("leader", resp)
		var re *remoteError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("the response does not decode: %v", err)
		}
		switch in[0] {
		case reqMembership:
			// A server may always take itself out (a server leaving),
			// voter or not; any other change from a non-voter is refused.
			r := &reader{b: in[1:]}
			kind, id := r.byte("kind"), r.string("id")
			self := r.err == nil && kind == memberRemove && id == fuzzPeer
			if err == nil && !self {
				t.Fatal("a membership change from a node that is not a voter was applied")
			}
		case reqApply:
			r := &reader{b: in[1:]}
			r.uvarint("timeout")
			envs, derr := decodeSaveCommand(r.b)
			if r.err != nil || derr != nil {
				if err == nil {
					t.Fatal("a malformed save was applied")
				}
				return
			}
			foreign := false
			for _, e := range envs {
				foreign = foreign || e.Node != fuzzPeer
			}
			if foreign && (re == nil || re.status != statusForbidden) {
				t.Fatalf("a save of another node's envelope answered %v", err)
			}
			if err == nil {
				if _, err := decodeApplyResults(payload, len(envs)); err != nil {
					t.Fatalf("the results of %d saves do not decode: %v", len(envs), err)
				}
			}
		case reqStats:
			if err == nil {
				if _, err := decodeStats(payload); err != nil {
					t.Fatalf("stats do not decode: %v", err)
				}
			}
		}
	})
}

func FuzzForwardResponse(f *testing.F) {
	stats := encodeStats(map[string]string{"state": "Leader", "term": "3", "last_contact": "0"})
	results := binary.AppendUvarint([]byte{statusOK}, 2)
	results = append(results, 0, 1, 2, 1, 5, 6)
	fuzzcheck.AddSeeds(f,
		[]any{byte(0), stats},
		[]any{byte(2), results},
		[]any{byte(1), results},
		[]any{byte(0), errorResponse(statusNotLeader, "127.0.0.1:7300")},
		[]any{byte(0), errorResponse(statusForbidden, "no")},
		[]any{byte(0), []byte{statusError, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		[]any{byte(0), []byte{statusOK, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		[]any{byte(255), []byte{statusOK, 0xff, 0x01}},
		[]any{byte(0), []byte{}},
	)
	f.Fuzz(func(t *testing.T, n byte, in []byte) {
		var payload []byte
		var err, serr, rerr error
		fuzzcheck.Alloc(t, "responses", 0, len(in), 64, func() {
			if payload, err = parseResponse("leader", in); err == nil {
				_, serr = decodeStats(payload)
				_, rerr = decodeApplyResults(payload, int(n))
			}
		})
		if err != nil {
			var re *remoteError
			if len(in) > 0 && in[0] != statusOK && !errors.As(err, &re) && !errors.Is(err, ErrBadCommand) {
				t.Fatalf("a refusal decoded to %v (%T)", err, err)
			}
			return
		}
		if in[0] != statusOK {
			t.Fatalf("status %d decoded as OK", in[0])
		}
		for _, e := range []error{serr, rerr} {
			if e != nil && !errors.Is(e, ErrBadCommand) {
				t.Fatalf("a malformed payload failed with %v, not ErrBadCommand", e)
			}
		}
	})
}
