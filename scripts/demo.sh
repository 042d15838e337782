#!/bin/sh
# demo.sh: one command from a fresh Debian machine with Go to normalized
# points in InfluxDB. It builds sensorgate, installs InfluxDB 1.8.10 if
# missing, starts its OWN Mosquitto and InfluxDB on free loopback ports in a
# fresh directory, runs sensorgate and the simulator, and prints what an
# analyst would query.
#
# It never talks to a server it did not start: each server's port must be
# held by the process the script started (checked in /proc), otherwise the
# server is started again on other ports or the demo fails with the server's
# log. Everything it starts it stops again by PID; the broker keeps no
# session (no persistence, clean session). Its files live in .demo/run.*,
# removed after a successful run.
#
# Environment: DEMO_COUNT uplinks to publish (300), DEMO_START_TIMEOUT
# seconds a server may take to start (30), DEMO_SENSORGATE a sensorgate
# binary to use instead of building one, DEMO_INFLUX_PORT the first port
# to try for InfluxDB (tests use it to put a decoy server there), DEMO_KEEP=1
# keeps the run directory.
set -eu
cd "$(dirname "$0")/.."
root="$(pwd)"
count="${DEMO_COUNT:-300}"
timeout="${DEMO_START_TIMEOUT:-30}"
mkdir -p "$root/.demo"
demo="$(mktemp -d "$root/.demo/run.XXXXXX")"
pids=""
ok=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	if [ -n "$ok" ] && [ -z "${DEMO_KEEP:-}" ]; then rm -rf "$demo"; else echo "demo files: $demo" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s\n' "$*"; }
# die prints the message and the tail of a log, and fails the demo.
die() {
	echo "demo: $1" >&2
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		echo "--- last lines of $2:" >&2
		tail -n 20 "$2" >&2
	fi
	exit 1
}
http() { curl -sS --max-time 10 "$@"; }
command -v curl >/dev/null 2>&1 || die "curl is missing: apt-get install curl"

# listen_inodes PORT prints the inodes of the sockets listening on the TCP
# port (state 0A is LISTEN in /proc/net/tcp).
listen_inodes() {
	awk -v p="$(printf ':%04X' "$1")" \
		'$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
# owns PID PORT: the process holds the socket listening on the port. A
# server that could not bind looks ready to a mere connection check when
# another server answers there; this tells them apart.
owns() {
	fds="$(ls -l "/proc/$1/fd" 2>/dev/null)" || return 1
	for inode in $(listen_inodes "$2"); do
		case "$fds" in *"socket:[$inode]"*) return 0 ;; esac
	done
	return 1
}
# free_port prints a port in 20000-32767 (below Linux's ephemeral range)
# with no listener; the server's own bind is the real test (see await).
free_port() {
	while :; do
		p=$(($(od -An -N2 -tu2 /dev/urandom) % 12768 + 20000))
		[ -z "$(listen_inodes "$p")" ] && { echo "$p"; return; }
	done
}
# await NAME PID PORT LOG [CHECK...] waits until process PID listens on
# PORT and CHECK (a command) succeeds. It returns 1 when the process exits
# first (its port was taken: the caller tries other ports) and fails the
# demo when DEMO_START_TIMEOUT passes.
await() {
	name=$1 pid=$2 port=$3 log=$4
	shift 4
	deadline=$(($(date +%s) + timeout))
	while [ "$(date +%s)" -le "$deadline" ]; do
		kill -0 "$pid" 2>/dev/null || return 1
		if owns "$pid" "$port" && { [ $# = 0 ] || "$@"; }; then return 0; fi
		sleep 0.1
	done
	die "$name (PID $pid) did not listen on 127.0.0.1:$port within ${timeout}s (DEMO_START_TIMEOUT)" "$log"
}

say "sensorgate"
if [ -n "${DEMO_SENSORGATE:-}" ]; then
	sg="$DEMO_SENSORGATE"
else
	sg="$demo/sensorgate"
	CGO_ENABLED=0 go build -o "$sg" ./cmd/sensorgate
fi
echo "$sg"

say "InfluxDB 1.8.10"
influxd="$(sh scripts/install-influxd.sh)"
echo "$influxd"
mosquitto="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
if [ ! -x "$mosquitto" ]; then
	[ "$(id -u)" = 0 ] || die "mosquitto is not installed: apt-get install mosquitto"
	apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
	mosquitto=/usr/sbin/mosquitto
fi

say "MQTT broker (Mosquitto, own instance)"
for attempt in 1 2 3; do
	broker_port="$(free_port)"
	# No persistence: no session outlives the demo.
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$broker_port" >"$demo/mosquitto.conf"
	"$mosquitto" -c "$demo/mosquitto.conf" >"$demo/mosquitto.log" 2>&1 &
	broker_pid=$!
	pids="$pids $broker_pid"
	await mosquitto "$broker_pid" "$broker_port" "$demo/mosquitto.log" && break
	[ "$attempt" = 3 ] && die "mosquitto exited during start three times" "$demo/mosquitto.log"
	echo "mosquitto exited (port $broker_port taken?); trying another port"
done
echo "started mosquitto (PID $broker_pid) on 127.0.0.1:$broker_port"

say "InfluxDB (own instance, fresh data directory, Flux off)"
influx_ping() {
	[ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://127.0.0.1:$influx_port/ping")" = 204 ]
}
for attempt in 1 2 3; do
	influx_port="$(free_port)"
	[ "$attempt" = 1 ] && [ -n "${DEMO_INFLUX_PORT:-}" ] && influx_port="$DEMO_INFLUX_PORT"
	rpc_port="$(free_port)"
	data="$demo/influxdb$attempt"
	# Flux is off: nothing here uses it, and with it influxd takes seconds to
	# start on an idle machine and over a minute on a loaded one.
	cat >"$demo/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$rpc_port"
[meta]
  dir = "$data/meta"
  logging-enabled = false
[data]
  dir = "$data/data"
  wal-dir = "$data/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$influx_port"
  flux-enabled = false
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[logging]
  level = "warn"
CONF
	# influxd reads INFLUXDB_* variables as config overrides: none from the
	# caller's shell may move it elsewhere.
	env -i HOME="$HOME" PATH="$PATH" "$influxd" run -config "$demo/influxdb.conf" >"$demo/influxd.log" 2>&1 &
	influx_pid=$!
	pids="$pids $influx_pid"
	await influxd "$influx_pid" "$influx_port" "$demo/influxd.log" influx_ping && break
	[ "$attempt" = 3 ] && die "influxd exited during start three times" "$demo/influxd.log"
	echo "influxd exited (port $influx_port or $rpc_port taken?); trying other ports"
done
# A fresh server lists no database yet: anything else is not ours.
dbs="$(http -G "http://127.0.0.1:$influx_port/query" --data-urlencode "q=SHOW DATABASES")"
case "$dbs" in *'"values"'*) die "the InfluxDB on 127.0.0.1:$influx_port already holds databases ($dbs): not the fresh one this demo started" "$demo/influxd.log" ;; esac
http -XPOST "http://127.0.0.1:$influx_port/query" --data-urlencode "q=CREATE DATABASE sensors" >/dev/null
echo "started influxd (PID $influx_pid) on 127.0.0.1:$influx_port"

say "devices and config"
"$sg" simulate -write-devices "$demo/devices.yaml" -devices 20 -seed 7
client="sensorgate-demo-$(basename "$demo")"
for attempt in 1 2 3; do
	api_port="$(free_port)"
	cat >"$demo/sensorgate.yaml" <<CONF
log: {level: info, format: json}
state_dir: $demo/state
http:
  listen: 127.0.0.1:$api_port
sources:
  - name: demo-chirpstack
    type: mqtt
    format: chirpstack-v4
    broker: tcp://127.0.0.1:$broker_port
    topics: ["application/+/device/+/event/up"]
    client_id: $client
    clean_session: true
influx:
  url: http://127.0.0.1:$influx_port
  bucket: sensors/autogen
devices:
  import: $demo/devices.yaml
  tags: [district, site]
CONF
	"$sg" validate -c "$demo/sensorgate.yaml"

	say "sensorgate run"
	"$sg" run -c "$demo/sensorgate.yaml" 2>"$demo/sensorgate.log" &
	sg_pid=$!
	pids="$pids $sg_pid"
	subscribed() { grep -q subscribed "$demo/sensorgate.log"; }
	await sensorgate "$sg_pid" "$api_port" "$demo/sensorgate.log" subscribed && break
	[ "$attempt" = 3 ] && die "sensorgate exited during start three times" "$demo/sensorgate.log"
	echo "sensorgate exited (port $api_port taken?); trying another port"
done
echo "sensorgate (PID $sg_pid) subscribed to 127.0.0.1:$broker_port"

say "publishing $count simulated ChirpStack v4 uplinks"
"$sg" simulate -broker "tcp://127.0.0.1:$broker_port" -client-id "$client-sim" -devices 20 -seed 7 -count "$count" -rate 200

q() { http -G "http://127.0.0.1:$influx_port/query" --data-urlencode "db=sensors" --data-urlencode "q=$1"; }
# table prints an InfluxQL JSON answer as rows, where python3 is there.
table() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c '
import json, sys
for res in json.load(sys.stdin)["results"]:
    for s in res.get("series", []):
        tags = " ".join(f"{k}={v}" for k, v in (s.get("tags") or {}).items())
        print(s["name"], tags)
        print("  " + " | ".join(s["columns"]))
        for row in s["values"]:
            print("  " + " | ".join("" if v is None else str(v) for v in row))
'
	else
		cat
		echo
	fi
}
n=0
deadline=$(($(date +%s) + timeout))
while [ "$(date +%s)" -le "$deadline" ]; do
	n="$(q 'SELECT count(gateways) FROM uplink' | sed -n 's/.*"values":\[\[[^,]*,\([0-9]*\)\]\].*/\1/p')"
	[ "${n:-0}" -ge "$count" ] && break
	sleep 0.1
done
# The answers below must still come from the influxd this script started.
owns "$influx_pid" "$influx_port" || die "influxd (PID $influx_pid) no longer holds 127.0.0.1:$influx_port" "$demo/influxd.log"
[ "${n:-0}" -ge "$count" ] || die "InfluxDB holds ${n:-0} of the $count uplinks published after ${timeout}s" "$demo/sensorgate.log"
echo "InfluxDB holds ${n} uplinks (published $count)"

say "mean air temperature per district (SELECT mean(temperature) FROM air GROUP BY district)"
q 'SELECT mean("temperature") AS mean_temperature, count("temperature") AS readings FROM "air" GROUP BY "district"' | table
say "three normalized points (SELECT * FROM air LIMIT 3)"
q 'SELECT * FROM "air" LIMIT 3' | table
say "the device registry through the HTTP API (sensorgate devices list reads the token the daemon generated into its state_dir)"
"$sg" devices list -c "$demo/sensorgate.yaml" | head -n 6
say "sensorgate log (last lines)"
tail -n 5 "$demo/sensorgate.log"
ok=1
