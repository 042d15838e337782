#!/bin/sh
# CPU per uplink against fleet size (issue 22 point 1): sensorgate-bench in
# live mode, 500 and 100,000 registered devices in interleaved single
# pairs (each with its own no-op run), appended as JSON lines to $OUT.
#   sh scripts/bench_fleet_cpu.sh [pairs] [uplinks]
set -eu
PAIRS=${1:-3}
N=${2:-50000}
OUT=${OUT:-bench-fleet-cpu.json}
go build -o /tmp/sensorgate-bench-fleet ./cmd/sensorgate-bench
go build -o /tmp/sensorgate-fleet ./cmd/sensorgate
i=1
while [ "$i" -le "$PAIRS" ]; do
	for d in 500 100000; do
		/tmp/sensorgate-bench-fleet -mode live -n "$N" -pairs 1 -devices "$d" -sensorgate /tmp/sensorgate-fleet -out "$OUT" -note "fleet $d"
	done
	i=$((i + 1))
done
