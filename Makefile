# dstate for Go. `make demo` shows a cluster; `make test` runs every test.
GO ?= go
FUZZTIME ?= 5m
SEEDS ?= 2000

.PHONY: all build test vet unit fuzz-smoke demo bench fuzz property

all: build test

build:
	$(GO) build ./...

## test: vet, every test with the race detector, and a short fuzz run
test: vet unit fuzz-smoke

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

fuzz-smoke:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeWire$$' -fuzztime 10s ./pkg/dstate/

## demo: a simulated 5-node cluster converging, losing a node and recovering
demo:
	$(GO) run ./cmd/dstatectl demo

## bench: every Go micro-benchmark, then every dstatectl bench scenario
## (briefly; `make bench BENCHFLAGS=` runs the full sizes BENCHMARKS.md records)
BENCHFLAGS ?= --quick
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./cmd/dstatectl bench all $(BENCHFLAGS)

## fuzz: longer fuzz runs of every target
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeWire$$' -fuzztime $(FUZZTIME) ./pkg/dstate/
	$(GO) test -run '^$$' -fuzz '^FuzzEngineHandleWire$$' -fuzztime $(FUZZTIME) ./pkg/dstate/

## property: the randomized simulation property test over many seeds
property:
	DSTATE_SEEDS=$(SEEDS) $(GO) test -count=1 -run Property ./pkg/dstate/dstatetest/
