#!/bin/sh
# install-influxd.sh installs InfluxDB 1.8.10 (influxd) for the integration
# tests, unless it is already there, and prints its path.
#
# influxd is pure Go, so `go install` builds it on any machine with a Go
# toolchain. It runs from a temporary directory with GOFLAGS=-mod=mod so
# that the install neither reads nor rewrites sensorgate's go.mod.
set -eu

version=v1.8.10
gobin="$(go env GOBIN)"
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"

if bin="$(command -v influxd 2>/dev/null)"; then
	echo "$bin"
	exit 0
fi
if [ -x "$gobin/influxd" ]; then
	echo "$gobin/influxd"
	exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "installing influxd $version into $gobin (takes a few minutes)" >&2
(cd "$tmp" && GOFLAGS=-mod=mod GO111MODULE=on go install "github.com/influxdata/influxdb/cmd/influxd@$version")
echo "$gobin/influxd"
