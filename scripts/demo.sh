#!/bin/sh
# demo.sh: one command from a fresh Debian machine with Go to normalized
# points in InfluxDB. It builds sensorgate, installs InfluxDB 1.8.10 into
# .tools/bin if missing, uses the Mosquitto broker on 127.0.0.1:1883 if one
# listens (else starts one, installing the package when root), starts
# InfluxDB and sensorgate, publishes simulated ChirpStack v4 uplinks, and
# prints what an analyst would query. Everything it starts it stops again
# (by PID); its files live in .demo/.
set -eu
cd "$(dirname "$0")/.."
root="$(pwd)"
demo="$root/.demo"
count="${DEMO_COUNT:-300}"
rm -rf "$demo"
mkdir -p "$demo/influxdb" "$demo/state"
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

say() { printf '\n== %s\n' "$*"; }
listening() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
http() {
	if command -v curl >/dev/null 2>&1; then curl -sS "$@"; else wget -qO- "$@"; fi
}

say "building sensorgate"
CGO_ENABLED=0 go build -o bin/sensorgate ./cmd/sensorgate

say "InfluxDB 1.8.10"
influxd="$(sh scripts/install-influxd.sh)"
echo "$influxd"

say "MQTT broker"
broker_port=1883
if listening 1883; then
	echo "using the broker on 127.0.0.1:1883"
else
	if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
		[ "$(id -u)" = 0 ] || { echo "no broker on 127.0.0.1:1883 and mosquitto is not installed: apt-get install mosquitto" >&2; exit 1; }
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
	fi
	broker_port=18830
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\nmax_queued_messages 0\n' \
		"$broker_port" "$demo" >"$demo/mosquitto.conf"
	"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$demo/mosquitto.conf" >"$demo/mosquitto.log" 2>&1 &
	pids="$pids $!"
	for _ in $(seq 50); do listening $broker_port && break; sleep 0.1; done
	echo "started mosquitto on 127.0.0.1:$broker_port"
fi

influx_port=18086
cat >"$demo/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:18088"
[meta]
  dir = "$demo/influxdb/meta"
[data]
  dir = "$demo/influxdb/data"
  wal-dir = "$demo/influxdb/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$influx_port"
  flux-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
CONF
"$influxd" run -config "$demo/influxdb.conf" >"$demo/influxd.log" 2>&1 &
pids="$pids $!"
for _ in $(seq 100); do http "http://127.0.0.1:$influx_port/ping" >/dev/null 2>&1 && break; sleep 0.2; done
http -XPOST "http://127.0.0.1:$influx_port/query" --data-urlencode "q=CREATE DATABASE sensors" >/dev/null
echo "started influxd on 127.0.0.1:$influx_port"

say "devices and config"
bin/sensorgate simulate -write-devices "$demo/devices.yaml" -devices 20 -seed 7
cat >"$demo/sensorgate.yaml" <<CONF
log: {level: info, format: json}
state_dir: $demo/state
sources:
  - name: demo-chirpstack
    type: mqtt
    format: chirpstack-v4
    broker: tcp://127.0.0.1:$broker_port
    topics: ["application/+/device/+/event/up"]
    client_id: sensorgate-demo
influx:
  url: http://127.0.0.1:$influx_port
  bucket: sensors/autogen
devices:
  import: $demo/devices.yaml
  tags: [district, site]
CONF
bin/sensorgate validate -c "$demo/sensorgate.yaml"

say "sensorgate run"
bin/sensorgate run -c "$demo/sensorgate.yaml" 2>"$demo/sensorgate.log" &
pids="$pids $!"
for _ in $(seq 100); do grep -q "subscribed" "$demo/sensorgate.log" 2>/dev/null && break; sleep 0.1; done
grep -q "subscribed" "$demo/sensorgate.log" || { cat "$demo/sensorgate.log"; echo "sensorgate did not subscribe" >&2; exit 1; }

say "publishing $count simulated ChirpStack v4 uplinks"
bin/sensorgate simulate -broker "tcp://127.0.0.1:$broker_port" -devices 20 -seed 7 -count "$count" -rate 200

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
		cat; echo
	fi
}
for _ in $(seq 100); do
	n="$(q 'SELECT count(rssi) FROM uplink' | sed -n 's/.*"values":\[\[[^,]*,\([0-9]*\)\]\].*/\1/p')"
	[ "${n:-0}" -ge "$count" ] && break
	sleep 0.2
done
echo "InfluxDB holds ${n:-0} uplinks"

say "mean air temperature per district (SELECT mean(temperature) FROM air GROUP BY district)"
q 'SELECT mean("temperature") AS mean_temperature, count("temperature") AS readings FROM "air" GROUP BY "district"' | table
say "three normalized points (SELECT * FROM air LIMIT 3)"
q 'SELECT * FROM "air" LIMIT 3' | table
say "the device registry through the HTTP API (sensorgate devices list; the CLI reads the token the daemon generated into .demo/state/http.token)"
bin/sensorgate devices list -c "$demo/sensorgate.yaml" | head -n 6
say "sensorgate log (last lines)"
tail -n 5 "$demo/sensorgate.log"
