#!/bin/sh
# install-telegraf.sh builds Telegraf v1.37.2 into .tools/bin (the
# project's tool folder), unless it is already there, and prints its path.
# Only the benchmark's side-by-side comparison uses it
# (sensorgate-bench -consumers sensorgate,telegraf).
#
# Telegraf's go.mod has replace directives, which `go install pkg@version`
# refuses, so the module is downloaded into the module cache and built
# inside that (read-only) directory, with Telegraf's custom-build tags so
# that only the plugins the comparison needs are compiled: mqtt_consumer,
# the json_v2 parser and the influxdb_v2 output. Neither Telegraf's source
# nor its binary is part of this repository.
set -eu

version=v1.37.2
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools/bin"
bin="$tools/telegraf-$version"

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$tools"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "downloading telegraf $version (the module and its dependencies; takes minutes)" >&2
dir="$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "github.com/influxdata/telegraf@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -n "$dir" ] || { echo "install-telegraf: go mod download gave no directory" >&2; exit 1; }
echo "building telegraf $version from $dir into $bin (custom build: mqtt_consumer, json_v2, influxdb_v2)" >&2
(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=auto go build -trimpath \
	-tags "custom,inputs.mqtt_consumer,parsers.json_v2,outputs.influxdb_v2" \
	-ldflags "-X github.com/influxdata/telegraf/internal.Version=${version#v}" \
	-o "$bin" ./cmd/telegraf)
echo "$bin"
