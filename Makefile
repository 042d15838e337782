# sensorgate — the two Quickstart commands are `make demo` and `make test`.
GO        ?= go
TOOLS     := $(CURDIR)/.tools/bin
export PATH := $(PATH):$(TOOLS)

.PHONY: demo test build bench bench-e2e clean

## demo: install what is missing, start InfluxDB, a broker, sensorgate and the simulator; print normalized points
demo:
	GOBIN=$(TOOLS) sh scripts/demo.sh

## test: the whole suite (gofmt, vet, staticcheck, unit, fuzz seeds, integration with real servers, -race)
test:
	sh scripts/test.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/sensorgate ./cmd/sensorgate

## bench: micro-benchmarks (feed parsing, decoding, line encoding)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./gateway/... ./decoders/...

## bench-e2e: publish N uplinks through a real broker into a real InfluxDB; msgs/s, CPU-s per 100k, peak RSS
bench-e2e:
	GOBIN=$(TOOLS) sh scripts/install-influxd.sh >/dev/null
	$(GO) test -run '^$$' -bench EndToEnd -benchtime 1x -count 3 -timeout 60m ./cmd/sensorgate $(BENCHFLAGS)

clean:
	rm -rf bin .demo
