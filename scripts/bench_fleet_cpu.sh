#!/bin/sh
# CPU per uplink against fleet size (issue 22 point 1): sensorgate-bench in
# live mode, 500 and 100,000 registered devices in interleaved single
# pairs (each with its own no-op run), appended as JSON lines to $OUT.
# Each sensorgate run first hears every device once (-warm), so the runs
# measure the steady state; WARM=0 measures every device's first uplink
# instead (with 100,000 devices nearly every uplink is its device's first).
#   sh scripts/bench_fleet_cpu.sh [pairs] [uplinks]
set -eu
PAIRS=${1:-6}
N=${2:-30000}
OUT=${OUT:-bench-fleet-cpu.json}
SENSORGATE=${SENSORGATE:-/tmp/sensorgate-fleet}
WARMFLAG=-warm
if [ "${WARM:-1}" = 0 ]; then
	WARMFLAG=
fi
go build -o /tmp/sensorgate-bench-fleet ./cmd/sensorgate-bench
if [ "$SENSORGATE" = /tmp/sensorgate-fleet ]; then
	go build -o /tmp/sensorgate-fleet ./cmd/sensorgate
fi
i=1
while [ "$i" -le "$PAIRS" ]; do
	for d in 500 100000; do
		/tmp/sensorgate-bench-fleet -mode live -n "$N" -pairs 1 -devices "$d" $WARMFLAG -poll 1s -sensorgate "$SENSORGATE" -out "$OUT" -note "fleet $d" || echo "run failed (fleet $d); see above"
	done
	i=$((i + 1))
done
