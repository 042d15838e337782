# sensorgate — the two Quickstart commands are `make demo` and `make test`.
GO        ?= go
TOOLS     := $(CURDIR)/.tools/bin
export PATH := $(PATH):$(TOOLS)

.PHONY: demo test fuzz build deb bench bench-e2e bench-e2e-live clean

## demo: install what is missing, start InfluxDB, a broker, sensorgate and the simulator; print normalized points
demo:
	GOBIN=$(TOOLS) sh scripts/demo.sh

## test: the whole suite (gofmt, vet, staticcheck, unit, fuzz seeds, integration with real servers, -race)
test:
	sh scripts/test.sh

## fuzz: every fuzz target for FUZZTIME each (default 30s), stopping at the first failure; a failing
## input is saved under the package's testdata/fuzz/ and becomes a seed `make test` runs
fuzz:
	sh scripts/fuzz.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/sensorgate ./cmd/sensorgate

## deb: Debian package in bin/ (binary, hardened systemd unit, /etc/sensorgate/sensorgate.yaml as conffile)
deb:
	sh scripts/deb.sh

## bench: micro-benchmarks with allocations (feed parsing, decoders, line encoding, spool, the per-message pipeline)
bench:
	GOBIN=$(TOOLS) sh scripts/install-influxd.sh >/dev/null
	$(GO) test -run '^$$' -bench . -benchmem ./gateway/... ./decoders/...
	$(GO) test -run '^$$' -bench 'Pipeline' -benchmem ./cmd/sensorgate

## bench-e2e: end-to-end benchmark (issue 7), backlog drain of 100k uplinks through a real Mosquitto into a real
## InfluxDB, sensorgate vs a no-op subscriber in 3 interleaved pairs; appends msgs/s, ratio, CPU-s per 100k,
## peak RSS and loss to BENCHMARKS.md (takes minutes). BENCHFLAGS adds flags, e.g. BENCHFLAGS="-profile cpu.pprof"
## bench-e2e-live: the same with publishing and consuming overlapping
bench-e2e: BENCH_MODE = backlog
bench-e2e-live: BENCH_MODE = live
bench-e2e bench-e2e-live: build
	GOBIN=$(TOOLS) sh scripts/install-influxd.sh >/dev/null
	$(GO) build -o bin/sensorgate-bench ./cmd/sensorgate-bench
	bin/sensorgate-bench -mode $(BENCH_MODE) -n 100000 -pairs 3 -sensorgate bin/sensorgate -out BENCHMARKS.md $(BENCHFLAGS)

clean:
	rm -rf bin .demo
