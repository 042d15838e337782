#!/bin/sh
# install-telegraf.sh builds Telegraf v1.37.2 into .tools/bin (the
# project's tool folder), unless it is already there, and prints its path.
# Only the benchmark's side-by-side comparison uses it
# (sensorgate-bench -consumers sensorgate,telegraf).
#
#   sh scripts/install-telegraf.sh          a custom build: only the plugins the
#                                           comparison needs (mqtt_consumer, the
#                                           json_v2 parser, the influxdb_v2 output);
#                                           a few minutes
#   sh scripts/install-telegraf.sh full     the default build, every plugin, as
#                                           Telegraf's release binaries are made:
#                                           about 200 MB of peak RSS in the
#                                           benchmark instead of 37; 20-50 minutes
#                                           on 2 cores
#
# Telegraf's go.mod has replace directives, which `go install pkg@version`
# refuses, so the module is downloaded into the module cache and built
# inside that (read-only) directory. Neither Telegraf's source nor its
# binary is part of this repository.
set -eu

version=v1.37.2
build="${1:-custom}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools/bin"
case "$build" in
custom)
	bin="$tools/telegraf-$version"
	tags="custom,inputs.mqtt_consumer,parsers.json_v2,outputs.influxdb_v2"
	;;
full)
	bin="$tools/telegraf-$version-full"
	tags=""
	;;
*)
	echo "install-telegraf: unknown build $build: use custom (the default) or full" >&2
	exit 2
	;;
esac

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
echo "building telegraf $version ($build build) from $dir into $bin" >&2
(cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=auto go build -trimpath \
	-tags "$tags" \
	-ldflags "-X github.com/influxdata/telegraf/internal.Version=${version#v}" \
	-o "$bin" ./cmd/telegraf)
echo "$bin"
