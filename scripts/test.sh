#!/bin/sh
# test.sh runs the whole test suite: formatting, vet, staticcheck, and every
# test (unit, fuzz seed corpora, integration against real Mosquitto and
# InfluxDB 1.8.10, the status page in headless Chromium) with the race
# detector. It installs what it needs first: Mosquitto, Chromium and
# PostgreSQL with apt-get (when root and missing), influxd and staticcheck
# with go install (into the Go caches, so later runs start at once).
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
# The shared registry is tested against the machine's PostgreSQL on
# 127.0.0.1:5432 as user postgres without a password (each test creates
# and drops its own database; the tests fail, never skip, without it).
# SG_TEST_PG_DSN points them elsewhere.
if [ -z "${SG_TEST_PG_DSN:-}" ]; then
	export PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
	if ! command -v pg_ctlcluster >/dev/null 2>&1; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
			echo "installing postgresql with apt-get" >&2
			apt-get update -qq >/dev/null
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
			# A cluster made for the tests: loopback connections as
			# postgres need no password.
			hba="/etc/postgresql/$(ls /etc/postgresql | sort -V | tail -1)/main/pg_hba.conf"
			sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
			pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main reload 2>/dev/null || true
		else
			echo "postgresql is missing: apt-get install postgresql (or set SG_TEST_PG_DSN)" >&2
			exit 1
		fi
	fi
	if ! pg_isready -q -h 127.0.0.1 -p 5432; then
		echo "starting postgresql" >&2
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
	fi
fi
sh scripts/install-influxd.sh >/dev/null
if ! command -v staticcheck >/dev/null 2>&1; then
	(cd /tmp && GOFLAGS=-mod=mod go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)
fi
# gotestsum shows each package as it finishes and sums up at the end.
if ! command -v gotestsum >/dev/null 2>&1; then
	(cd /tmp && GOFLAGS=-mod=mod go install gotest.tools/gotestsum@v1.13.0)
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
echo "== go test -race: each package as it finishes (its time in brackets), then the count of tests and the total time"
gotestsum --format pkgname --format-hide-empty-pkg -- -race -count=1 -timeout 20m ./...
