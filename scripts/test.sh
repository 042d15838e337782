#!/bin/sh
# test.sh runs the whole test suite: formatting, vet, staticcheck, and every
# test (unit, fuzz seed corpora, integration against real Mosquitto and
# InfluxDB 1.8.10, the status page in headless Chromium) with the race
# detector. It installs what it needs first: Mosquitto and Chromium with
# apt-get (when root and missing), influxd and staticcheck with go install
# (into the Go caches, so later runs start at once).
set -eu
cd "$(dirname "$0")/.."

gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
export PATH="$PATH:$gobin:/usr/sbin:/usr/local/sbin"

if ! command -v mosquitto >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing mosquitto with apt-get" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
	else
		echo "mosquitto is missing: apt-get install mosquitto" >&2
		exit 1
	fi
fi
# The status page is tested in headless Chromium (Debian's package; the
# test fails, never skips, without it).
if ! command -v chromium >/dev/null 2>&1 && [ -z "${SENSORGATE_CHROMIUM:-}" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing chromium with apt-get" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		echo "chromium is missing: apt-get install chromium (or set SENSORGATE_CHROMIUM)" >&2
		exit 1
	fi
fi
sh scripts/install-influxd.sh >/dev/null
if ! command -v staticcheck >/dev/null 2>&1; then
	(cd /tmp && GOFLAGS=-mod=mod go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)
fi

echo "== gofmt"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck ./...
echo "== go test -race"
go test -race -count=1 -timeout 20m ./...
