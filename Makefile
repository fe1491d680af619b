# Flower-CDN. `make run` starts the demo, `make test` runs every test.
GO       ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOFMT    ?= $(dir $(GO))gofmt
BIN      := bin
GOFLAGS  ?=
export CGO_ENABLED ?= 0

.PHONY: all build run site sim-demo test test-short bench bench-sim sim fmt vet fuzz clean deps wasm-shared browser-deps

all: build

build:
	$(GO) build -o $(BIN)/flower ./cmd/flower
	$(GO) build -o $(BIN)/flower-bootstrap ./cmd/flower-bootstrap

# The main job: the browser demo. Builds the binaries and the signed demo site
# (bin/site), then runs the bootstrap service (127.0.0.1:7700), the demo origin
# (127.0.0.1:8080) and one native seeder until Ctrl-C (scripts/run-demo.sh).
run:
	GO=$(GO) MAKE=$(MAKE) ./scripts/run-demo.sh

# The demo site, signed, for the origin SITE_BASE and the bootstrap
# SITE_BOOTSTRAP (scripts/build-site.sh; needs wasm/ and site/flower/).
SITE_DIR       ?= $(BIN)/site
SITE_BASE      ?= http://127.0.0.1:8080
SITE_BOOTSTRAP ?= http://127.0.0.1:7700
SITE_KEYFILE   ?= $(BIN)/site.key
site: build
	GO=$(GO) FLOWER=./$(BIN)/flower ./scripts/build-site.sh $(SITE_DIR) $(SITE_BASE) $(SITE_BOOTSTRAP) $(SITE_KEYFILE)

# The simulator demo (Flower-CDN against the Squirrel baselines and
# origin-only, writing sim.svg), then the bootstrap service on 127.0.0.1:7700
# until interrupted.
RUNFLAGS ?= --peers 2000 --sites 20 --queries 200000 --seed 7 --warmup 20000
sim-demo: build
	./$(BIN)/flower sim $(RUNFLAGS) --plot sim.svg
	@echo "bootstrap service on http://127.0.0.1:7700 (Ctrl-C stops it)"
	./$(BIN)/flower-bootstrap --listen 127.0.0.1:7700

sim: build
	./$(BIN)/flower sim $(SIMFLAGS)

# The shared packages also build for the browser (GOOS=js GOARCH=wasm).
# The browser end-to-end tests (tests/browser) drive Debian's chromium; they
# run after the others, not beside them: two or three browsers and their
# WebRTC share the machine's cores, and the figures they check (time to a
# peer's first byte, the share of bytes from peers) are the browsers', not
# those of a machine also running the simulator's tests.
test: vet wasm-shared browser-deps
	CGO_ENABLED=1 $(GO) test -race -count=1 $$($(GO) list ./... | grep -v '/tests/browser')
	CGO_ENABLED=1 $(GO) test -race -count=1 ./tests/browser/...

wasm-shared:
	GOOS=js GOARCH=wasm $(GO) build ./shared/... ./bootstrap/client ./worker ./wasm
	GOOS=js GOARCH=wasm $(GO) vet ./shared/idb ./shared/jsutil ./worker ./wasm

browser-deps:
	./scripts/install-browser.sh

# The shipped WebAssembly module's size: raw, gzip -9, brotli -q 11, built as
# `make site` builds it (docs/browser.md, "Size"). WASMSIZE_TABLE=1 adds the
# code bytes by Go package (internal/wasmsize).
.PHONY: wasm-size
wasm-size:
	GO=$(GO) ./scripts/wasm-size.sh ./wasm

test-short:
	$(GO) test -count=1 -short ./...

# BENCH_ALL=1 adds the Pastry baselines (squirrel_pns, squirrel_pns_dir).
bench: build
	BENCH_ALL=$(BENCH_ALL) ./scripts/bench-sim.sh

fmt:
	$(GOFMT) -w $$(git ls-files '*.go')

vet:
	@test -z "$$($(GOFMT) -l $$(git ls-files '*.go'))" || { $(GOFMT) -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf $(BIN) sim.svg

# Bootstrap service benchmark: `flower loadtest` against the real binary at
# 10k and 50k peers (BENCH_100K=1 adds 100k); prints JSON.
# P2P transfer benchmark: two native peers over WebRTC on 127.0.0.1 with the
# bootstrap service and a signed local origin; prints JSON.
.PHONY: bench-transfer
bench-transfer: build
	./$(BIN)/flower bench-transfer --size 16MiB --runs 10 --json
	./$(BIN)/flower bench-transfer --size 1MiB --runs 10 --json

.PHONY: bench-bootstrap
bench-bootstrap:
	./scripts/bench-bootstrap.sh
