# dstate for Go. `make demo` shows a cluster; `make test` runs every test.
GO ?= go
FUZZTIME ?= 5m
SEEDS ?= 2000
E2E_NEMESIS ?= 60s

.PHONY: all build test vet unit fuzz-smoke demo bench fuzz property e2e

all: build test

build:
	$(GO) build ./...

## test: vet, every test with the race detector, and a short fuzz run
test: vet unit fuzz-smoke

vet:
	$(GO) vet ./...
	cd adapters/protoactor && $(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...
	cd adapters/protoactor && $(GO) test -race -count=1 ./...

## fuzz-smoke: every fuzz target briefly
fuzz-smoke:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeWire$$' -fuzztime 10s ./pkg/dstate/
	$(GO) test -run '^$$' -fuzz '^FuzzEngineHandleWire$$' -fuzztime 3s ./pkg/dstate/
	$(GO) test -run '^$$' -fuzz '^FuzzReadMessage$$' -fuzztime 3s ./pkg/transport/
	$(GO) test -run '^$$' -fuzz '^FuzzAcceptHandshake$$' -fuzztime 3s ./pkg/transport/
	$(GO) test -run '^$$' -fuzz '^FuzzReadHandshake$$' -fuzztime 3s ./pkg/transport/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime 3s ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEnvelope$$' -fuzztime 3s ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzRestoreSnapshot$$' -fuzztime 3s ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSaveCommand$$' -fuzztime 3s ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime 3s ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeStoredEnvelope$$' -fuzztime 3s ./pkg/localpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzAdminAPI$$' -fuzztime 3s ./pkg/agent/
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime 3s ./pkg/agent/

## demo: a simulated 5-node cluster converging, losing a node and recovering
demo:
	$(GO) run ./cmd/dstatectl demo

## bench: every Go micro-benchmark, then every dstatectl bench scenario
## (briefly; `make bench BENCHFLAGS=` runs the full sizes BENCHMARKS.md records)
BENCHFLAGS ?= --quick
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/dstatectl bench all $(BENCHFLAGS)

## fuzz: longer fuzz runs of every target, one after another (the test
## timeout is lifted: it would otherwise cut runs of FUZZTIME=10m or more)
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeWire$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/dstate/
	$(GO) test -run '^$$' -fuzz '^FuzzEngineHandleWire$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/dstate/
	$(GO) test -run '^$$' -fuzz '^FuzzReadMessage$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/transport/
	$(GO) test -run '^$$' -fuzz '^FuzzAcceptHandshake$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/transport/
	$(GO) test -run '^$$' -fuzz '^FuzzReadHandshake$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/transport/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEnvelope$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzRestoreSnapshot$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeSaveCommand$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/raftpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeStoredEnvelope$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/localpersist/
	$(GO) test -run '^$$' -fuzz '^FuzzAdminAPI$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/agent/
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime $(FUZZTIME) -timeout 0 ./pkg/agent/

## property: the randomized simulation property test over many seeds
property:
	DSTATE_SEEDS=$(SEEDS) $(GO) test -count=1 -run Property ./pkg/dstate/dstatetest/

## e2e: the multi-process end-to-end and chaos suite: real dstatectl agents, a
## 5-node nemesis for E2E_NEMESIS, a 5-node cluster with mutual TLS and
## gossip encryption, and 60 s of overload on 3 nodes (make test runs the
## same tests shorter: a 10 s nemesis on 3 nodes, 5 s of overload). E2E_SEED=n replays a schedule; E2E_RESULTS=file
## collects the measured durations (see e2e/RESULTS.md).
e2e:
	E2E_NEMESIS=$(E2E_NEMESIS) E2E_FULL=1 $(GO) test -count=1 -timeout 20m $(E2E_FLAGS) ./e2e/
