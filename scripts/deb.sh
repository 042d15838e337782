#!/bin/sh
# deb.sh builds the Debian package bin/sensorgate_VERSION_ARCH.deb with nfpm
# (installed into .tools/bin from the Go module proxy when missing): the
# static binary, the hardened systemd unit and /etc/sensorgate/sensorgate.yaml
# as a conffile (deploy/debian/). VERSION defaults to 0.0.0~git<commit>;
# DEB_SENSORGATE packages that binary instead of building one.
set -eu
cd "$(dirname "$0")/.."
tools="$(pwd)/.tools/bin"
nfpm_version=v2.48.0

if ! nfpm="$(command -v nfpm 2>/dev/null)"; then
	nfpm="$tools/nfpm"
	if [ ! -x "$nfpm" ]; then
		echo "installing nfpm $nfpm_version into $tools" >&2
		(cd /tmp && GOFLAGS=-mod=mod GOBIN="$tools" go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$nfpm_version")
	fi
fi

if [ -z "${VERSION:-}" ]; then
	VERSION="0.0.0~git$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
fi
GOARCH="${GOARCH:-$(go env GOARCH)}"
export VERSION GOARCH
mkdir -p bin/deb
if [ -n "${DEB_SENSORGATE:-}" ]; then
	# A binary built already (the tests share one between their runs).
	cp "$DEB_SENSORGATE" bin/deb/sensorgate
else
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o bin/deb/sensorgate ./cmd/sensorgate
fi
"$nfpm" package -f deploy/debian/nfpm.yaml -p deb -t bin/ >&2
# The package of this version: bin/ may hold older ones, whose names can
# sort after it.
deb="bin/sensorgate_${VERSION}_${GOARCH}.deb"
[ -f "$deb" ] || { echo "nfpm did not write $deb" >&2; exit 1; }
echo "$deb"
