# packetlake — see README.md. Every target works on a fresh machine of this project's kind.
GO      ?= go
BIN     := bin/packetlake
# Test binaries start their own ClickHouse and Kafka; two at a time fits 2 cores and 24 GiB.
# -count=1: results of tests against real servers and the kernel are never taken from the cache.
TESTFLAGS ?= -count=1 -p 2 -timeout 45m
BENCHTIME ?= 1x

.PHONY: all build generate check-generated deps install test demo bench fuzz lint clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/packetlake

# Regenerates everything derived from schema/columns.go, bpf/*.c and test/bench/gen/gen.c (the line-rate
# benchmark's traffic generator). The outputs are committed.
generate:
	$(GO) run ./schema/gen
	$(GO) generate ./bpf/
	$(GO) generate ./test/bench/gen/

# Fails when the committed generated files differ from what `make generate` writes.
check-generated: deps
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	cp -r bpf record "$$tmp/" && mkdir -p "$$tmp/test/bench" && cp -r test/bench/gen "$$tmp/test/bench/" && \
	$(MAKE) -s generate && \
	if diff -r -q "$$tmp/bpf" bpf && diff -r -q "$$tmp/record" record && diff -r -q "$$tmp/test/bench/gen" test/bench/gen; then \
	  echo "check-generated: committed generated files are current"; \
	else echo "check-generated: generated files were stale (now regenerated): commit them" >&2; exit 1; fi

# System packages (Debian) and the real ClickHouse and Kafka, cached under ~/.cache/packetlake.
deps:
	@scripts/install-deps.sh

install: deps build
	$(BIN) install

test: deps install check-generated
	$(GO) vet ./...
	$(GO) test $(TESTFLAGS) ./...

# Needs root. Flags pass through, e.g. make demo DEMOFLAGS='--duration 20s --keep=false'.
demo: deps build
	$(BIN) demo $(DEMOFLAGS)

# One package at a time (-p 1): each binary runs its own ClickHouse and Kafka, and two benchmarks
# side by side on 2 cores would measure each other. Component benchmarks run for Go's usual
# benchmark time; the pipeline benchmarks in bench/ move a million packets per iteration, so one
# iteration each. Their ClickHouse keeps its parts on a fresh journaled ext4 (scripts/on-journaled-ext4.sh
# says why). See BENCHMARKS.md.
bench: deps install
	$(GO) test -p 1 -run '^$$' -bench . -timeout 30m ./bpf/ ./collector/ ./record/...
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 10x -timeout 30m ./ingester/
	scripts/on-journaled-ext4.sh $(GO) test -p 1 -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./test/bench/
	$(GO) test -p 1 -run '^$$' -bench . -benchtime 20x -timeout 30m ./console/

# Every fuzz target for FUZZTIME each, one after the other (Go fuzzes one target per run); not
# part of make test. Needs root (the BPF target loads the program). New failing inputs land in
# the package's testdata/fuzz/<Target>/ and are committed as seeds. See FUZZING.md.
FUZZTIME ?= 5m
FUZZ_TARGETS := \
	./bpf/:FuzzParserVsGopacket \
	./record/:FuzzParseFrame ./record/:FuzzStatsMessage ./record/:FuzzFlowMessage \
	./record/l7/:FuzzParseDNS ./record/l7/:FuzzParseTLSClientHello ./record/l7/:FuzzParseHTTPRequest \
	./internal/pcapfile/:FuzzCapture ./cmd/packetlake/:FuzzConfigFile
fuzz: deps
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; echo "== $$name ($$pkg, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

clean:
	rm -rf bin .demo
