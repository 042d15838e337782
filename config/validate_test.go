package config

import (
	"testing"
)

// second is a second valid source, on lines 10 to 14 when appended to base.
const second = `  - name: b
    type: mqtt
    format: chirpstack-v4
    broker: tcp://127.0.0.1:1883
    topics: [a/+]
`

// jsonSource turns base's source into a generic JSON one on topic
// sensors/+/data, and appends json keys from line 10 on.
func jsonSource(jsonLines ...string) string {
	src := edit(base, `    format: chirpstack-v4`, `    format: json`)
	src = edit(src, `    topics: ["application/+/device/+/event/up"]`, `    topics: [sensors/+/data]`)
	return src + lines(append([]string{"    json:"}, jsonLines...)...)
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []want
	}{
		{"valid", base, nil},

		// log, http, state_dir
		{"log level", base + lines("log:", "  level: verbose"),
			[]want{{11, "log.level", `"verbose" is not a log level: use debug, info, warn or error`}}},
		{"log format", base + lines("log:", "  format: text"),
			[]want{{11, "log.format", `"text" is not a log format: use console or json`}}},
		{"listen without port", base + lines("http:", "  listen: localhost"),
			[]want{{11, "http.listen", `"localhost" is not host:port`}}},
		{"listen bad port", base + lines("http:", "  listen: ':http'"),
			[]want{{11, "http.listen", `port "http" is not a TCP port`}}},
		{"listen every interface", base + lines("http:", "  listen: ':8080'", "  token: t"), nil},
		{"listen every interface without token", base + lines("http:", "  listen: '0.0.0.0:8080'"),
			[]want{{10, "http.token", `empty while http.listen "0.0.0.0:8080" accepts remote clients`}}},
		{"tls cert without key", base + lines("http:", "  tls_cert: /etc/c.pem"),
			[]want{{10, "http.tls_key", "HTTPS needs both"}}},
		{"max body zero", base + lines("http:", "  max_body_bytes: 0"),
			[]want{{11, "http.max_body_bytes", "at least 1"}}},
		{"silent factor below 1", base + lines("devices:", "  silent_factor: 0.5"),
			[]want{{11, "devices.silent_factor", "at least 1"}}},
		{"health interval zero", base + lines("devices:", "  health_interval: 0s"),
			[]want{{11, "devices.health_interval", "0 is not allowed"}}},
		{"state_dir empty takes default", base + lines(`state_dir: ""`), nil},

		// sources
		{"no sources", lines("influx:", "  url: http://127.0.0.1:8086", "  bucket: b"),
			[]want{{0, "sources", "no source: add at least one"}}},
		{"empty sources", lines("influx:", "  url: http://127.0.0.1:8086", "  bucket: b", "sources: []"),
			[]want{{4, "sources", "no source"}}},
		{"name missing", edit(base, "  - name: cs", "  -"),
			[]want{{6, "sources[0].name", "missing: give each source a unique name"}}},
		{"name characters", edit(base, "  - name: cs", "  - name: city sensors"),
			[]want{{5, "sources[0].name", `"city sensors": use letters, digits`}}},
		{"name duplicate", base + edit(second, "  - name: b", "  - name: cs"),
			[]want{{10, "sources[1].name", `"cs" is also the name of sources[0]`}}},
		{"type missing", edit(base, "    type: mqtt"),
			[]want{{5, "sources[0].type", "missing: use mqtt"}}},
		{"type unknown", edit(base, "    type: mqtt", "    type: amqp"),
			[]want{{6, "sources[0].type", `"amqp" is not a source type: use mqtt`}}},
		{"format missing", edit(base, "    format: chirpstack-v4"),
			[]want{{5, "sources[0].format", "missing: use chirpstack-v4, chirpstack-v3, tts-v3, json or gateway-bridge"}}},
		{"format unknown", edit(base, "    format: chirpstack-v4", "    format: chirpstak-v4"),
			[]want{{7, "sources[0].format", `"chirpstak-v4" is not a feed format: use chirpstack-v4, chirpstack-v3, tts-v3, json or gateway-bridge`}}},
		{"broker missing", edit(base, "    broker: tcp://127.0.0.1:1883"),
			[]want{{5, "sources[0].broker", "missing: give the broker's URL"}}},
		{"broker not a URL", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: 127.0.0.1:1883"),
			[]want{{8, "sources[0].broker", `"127.0.0.1:1883" is not a broker URL: write scheme://host:port`}}},
		{"broker scheme", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: http://127.0.0.1:1883"),
			[]want{{8, "sources[0].broker", `scheme "http" is not an MQTT transport`}}},
		{"broker without port", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: tcp://broker.city"),
			[]want{{8, "sources[0].broker", `"tcp://broker.city" has no port`}}},
		{"broker port range", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: tcp://127.0.0.1:70000"),
			[]want{{8, "sources[0].broker", `port "70000" is not a TCP port`}}},
		{"broker other transports", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: wss://broker.city:443/mqtt"), nil},
		{"topics missing", edit(base, `    topics: ["application/+/device/+/event/up"]`),
			[]want{{5, "sources[0].topics", "missing: list at least one topic filter"}}},
		{"topic filters", edit(base, `    topics: ["application/+/device/+/event/up"]`, `    topics: ["a/#/b", "a/b+", "", "a/+/#"]`),
			[]want{
				{9, "sources[0].topics[0]", `"a/#/b" is not a topic filter: # must be a whole level and the last one`},
				{9, "sources[0].topics[1]", `"a/b+" is not a topic filter: + must be a whole level`},
				{9, "sources[0].topics[2]", `"" is empty`},
			}},
		{"client_id duplicate of a derived one", base + second + lines("    client_id: sensorgate-cs"),
			[]want{{15, "sources[1].client_id", `"sensorgate-cs" is also the client id of sources[0]`}}},
		{"password without username", base + lines("    password: secret"),
			[]want{{10, "sources[0].password", "set without username"}}},
		{"qos 3", base + lines("    qos: 3"),
			[]want{{10, "sources[0].qos", "3 is not an MQTT QoS: use 0, 1 or 2"}}},
		{"qos negative", base + lines("    qos: -1"),
			[]want{{10, "sources[0].qos", "-1 is not an MQTT QoS"}}},
		{"qos fraction", base + lines("    qos: 1.5"),
			[]want{{10, "sources[0].qos", "1.5 is not an MQTT QoS"}}},
		{"qos word", base + lines("    qos: once"),
			[]want{{10, "sources[0].qos", `"once" is not a whole number`}}},
		{"max_in_flight 0", base + lines("    max_in_flight: 0"),
			[]want{{10, "sources[0].max_in_flight", "0: must be a whole number of at least 1 (default 128)"}}},
		{"reconnect_max negative", base + lines("    reconnect_max: -1m"),
			[]want{{10, "sources[0].reconnect_max", "-1m0s is negative: give a duration above 0 (default 1m0s)"}}},
		{"broker tcps", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: tcps://broker.city:8883"), nil},
		{"unknown_devices", base + lines("    unknown_devices: drop"),
			[]want{{10, "sources[0].unknown_devices", `"drop" is not a unknown_devices policy: use accept or reject`}}},

		// map
		{"map ok", base + lines("    map:", "      - {key: data.temp, quantity: air.temperature, scale: 0.1}", "      - {key: open, quantity: action.contactState}"), nil},
		{"map key and quantity missing", base + lines("    map:", "      - scale: 2"),
			[]want{
				{11, "sources[0].map[0].key", "missing: name the key"},
				{11, "sources[0].map[0].quantity", "missing: name a catalogue quantity"},
			}},
		{"map key path", base + lines("    map:", "      - key: data..temp", "        quantity: air.temperature"),
			[]want{{11, "sources[0].map[0].key", `"data..temp" is not a JSON path`}}},
		{"map quantity typo", base + lines("    map:", "      - key: t", "        quantity: air.temprature"),
			[]want{{12, "sources[0].map[0].quantity", `"air.temprature" is not a catalogue quantity: did you mean air.temperature?`}}},
		{"map quantity without measurement", base + lines("    map:", "      - key: t", "        quantity: laeq"),
			[]want{{12, "sources[0].map[0].quantity", "did you mean sound.laeq?"}}},
		{"map quantity unknown", base + lines("    map:", "      - key: t", "        quantity: ozone.level"),
			[]want{{12, "sources[0].map[0].quantity", "see the catalogue in decoders/catalogue.go"}}},
		{"map quantity twice", base + lines("    map:", "      - {key: t1, quantity: air.temperature}", "      - {key: t2, quantity: air.temperature}"),
			[]want{{12, "sources[0].map[1].quantity", `"air.temperature" is also mapped by sources[0].map[0]`}}},
		{"map scale not finite", base + lines("    map:", "      - {key: t, quantity: air.temperature, scale: .nan}"),
			[]want{{11, "sources[0].map[0].scale", "NaN is not a usable factor"}}},
		{"map scale on a boolean", base + lines("    map:", "      - {key: p, quantity: parking.occupied, scale: 2}"),
			[]want{{11, "sources[0].map[0].scale", "parking.occupied is a boolean quantity: scale applies to numbers only"}}},

		// json
		{"json ok", jsonSource("      device_id: topic:1", "      time: ts", "      time_format: unix_ms", "      object: values"), nil},
		{"json path device", jsonSource("      device_id: meta.deviceId"), nil},
		{"json level under #", edit(jsonSource("      device_id: topic:4"), "    topics: [sensors/+/data]", "    topics: [sensors/#]"), nil},
		{"json on another format", base + lines("    json:", "      device_id: topic:1"),
			[]want{{10, "sources[0].json", "applies to format json only"}}},
		{"json device_id missing", jsonSource("      time: ts"),
			[]want{{10, "sources[0].json.device_id", "missing: say where a message names its device"}}},
		{"json device_id level syntax", jsonSource("      device_id: topic:x"),
			[]want{{11, "sources[0].json.device_id", `"topic:x" is not topic:N`}}},
		{"json device_id level past the end", jsonSource("      device_id: topic:3"),
			[]want{{11, "sources[0].json.device_id", `topic:3 is past the end of topic "sensors/+/data" (levels 0 to 2)`}}},
		{"json device_id fixed level", jsonSource("      device_id: topic:0"),
			[]want{{11, "sources[0].json.device_id", `topic:0 is "sensors" in topic "sensors/+/data", the same for every message`}}},
		{"json device_id path", jsonSource("      device_id: .id"),
			[]want{{11, "sources[0].json.device_id", `".id" is not a JSON path`}}},
		{"json time path", jsonSource("      device_id: topic:1", "      time: 'a b'"),
			[]want{{12, "sources[0].json.time", `"a b" is not a JSON path`}}},
		{"json time_format", jsonSource("      device_id: topic:1", "      time: ts", "      time_format: epoch"),
			[]want{{13, "sources[0].json.time_format", `"epoch" is not a time format: use rfc3339, unix, unix_ms or unix_ns`}}},
		{"json time_format without time", jsonSource("      device_id: topic:1", "      time_format: unix"),
			[]want{{12, "sources[0].json.time_format", "set without json.time"}}},
		{"json object path", jsonSource("      device_id: topic:1", "      object: values."),
			[]want{{12, "sources[0].json.object", `"values." is not a JSON path`}}},

		// influx
		{"influx url missing", edit(base, "  url: http://127.0.0.1:8086"),
			[]want{{1, "influx.url", "missing: give InfluxDB's URL"}}},
		{"influx section missing", lines("sources:", "  - {name: a, type: mqtt, format: tts-v3, broker: 'ssl://h:8883', topics: [x]}"),
			[]want{
				{0, "influx.url", "missing: give InfluxDB's URL"},
				{0, "influx.bucket", "missing: name the bucket"},
			}},
		{"influx url scheme", edit(base, "  url: http://127.0.0.1:8086", "  url: 127.0.0.1:8086"),
			[]want{{2, "influx.url", `"127.0.0.1:8086" is not an InfluxDB URL`}}},
		{"influx url credentials", edit(base, "  url: http://127.0.0.1:8086", "  url: http://admin:secret@127.0.0.1:8086"),
			[]want{{2, "influx.url", `"http://admin:xxxxx@127.0.0.1:8086" carries credentials: put them in influx.token`}}},
		{"influx url query", edit(base, "  url: http://127.0.0.1:8086", "  url: http://127.0.0.1:8086/?db=x"),
			[]want{{2, "influx.url", `"http://127.0.0.1:8086/?db=x" has a query or fragment`}}},
		{"influx url path prefix", edit(base, "  url: http://127.0.0.1:8086", "  url: https://proxy.city/influx"), nil},
		{"influx bucket missing", edit(base, "  bucket: sensors"),
			[]want{{1, "influx.bucket", "missing: name the bucket"}}},
		{"batch_size 0", edit(base, "  bucket: sensors", "  bucket: sensors", "  batch_size: 0"),
			[]want{{4, "influx.batch_size", "0: must be a whole number of at least 1 (default 5000)"}}},
		{"batch_size negative", edit(base, "  bucket: sensors", "  bucket: sensors", "  batch_size: -5"),
			[]want{{4, "influx.batch_size", "-5: must be"}}},
		{"batch_size fraction", edit(base, "  bucket: sensors", "  bucket: sensors", "  batch_size: 2.5"),
			[]want{{4, "influx.batch_size", "2.5: must be a whole number"}}},
		{"influx max_in_flight 0", edit(base, "  bucket: sensors", "  bucket: sensors", "  max_in_flight: 0"),
			[]want{{4, "influx.max_in_flight", "0: must be a whole number of at least 1 (default 2)"}}},
		{"flush_interval 0", edit(base, "  bucket: sensors", "  bucket: sensors", "  flush_interval: 0s"),
			[]want{{4, "influx.flush_interval", "0 is not allowed: give a duration above 0, or remove the key for the default 100ms"}}},
		{"flush_interval negative", edit(base, "  bucket: sensors", "  bucket: sensors", "  flush_interval: -1s"),
			[]want{{4, "influx.flush_interval", "-1s is negative"}}},
		{"timeout without unit", edit(base, "  bucket: sensors", "  bucket: sensors", "  timeout: 10"),
			[]want{{4, "influx.timeout", `"10" is not a duration: write a number with a unit`}}},
		{"gzip word", edit(base, "  bucket: sensors", "  bucket: sensors", "  gzip: maybe"),
			[]want{{4, "influx.gzip", `"maybe" is not auto, always or never`}}},

		// devices, decoders
		{"devices import", base + lines("devices:", "  import: /etc/sensorgate/devices.xlsx"),
			[]want{{11, "devices.import", `"/etc/sensorgate/devices.xlsx" is neither CSV nor YAML`}}},
		{"devices tags", base + lines("devices:", "  tags: [site, '', source, _start, 'a b', site]"),
			[]want{
				{11, "devices.tags[1]", "is empty"},
				{11, "devices.tags[2]", `"source" is written by sensorgate itself`},
				{11, "devices.tags[3]", `"_start": InfluxDB reserves keys starting with _`},
				{11, "devices.tags[4]", `"a b": use letters, digits`},
				{11, "devices.tags[5]", `"site" is already listed as devices.tags[0]`},
			}},
		{"devices tags not a list", base + lines("devices:", "  tags: site"),
			[]want{{11, "devices.tags", `"site" is a single value, but a list belongs here: write [site]`}}},
		{"decoders timeout negative", base + lines("decoders:", "  timeout: -5ms"),
			[]want{{11, "decoders.timeout", "-5ms is negative"}}},
		{"decoders timeout zero", base + lines("decoders:", "  timeout: 0ms"),
			[]want{{11, "decoders.timeout", "0 is not allowed"}}},
		{"codec sandbox unknown", base + lines("decoders:", "  sandbox: docker"),
			[]want{{11, "decoders.sandbox", `"docker" is not a codec sandbox: use workers or in-process`}}},
		{"codec workers negative", base + lines("decoders:", "  workers: -1"),
			[]want{{11, "decoders.workers", "-1 is negative"}}},
		{"worker timeout below twice the codec timeout", base + lines("decoders:", "  timeout: 300ms", "  worker_timeout: 500ms"),
			[]want{{12, "decoders.worker_timeout", "500ms is not more than twice decoders.timeout (300ms)"}}},
		{"worker timeout zero", base + lines("decoders:", "  worker_timeout: 0s"),
			[]want{{11, "decoders.worker_timeout", "0 is not allowed"}}},
		{"worker memory too small", base + lines("decoders:", "  worker_memory: 1000"),
			[]want{{11, "decoders.worker_memory", "1000 bytes is too little"}}},
		{"worker memory negative", base + lines("decoders:", "  worker_memory: -1"),
			[]want{{11, "decoders.worker_memory", "-1 is negative"}}},
		{"max output too small", base + lines("decoders:", "  max_output: 0"),
			[]want{{11, "decoders.max_output", "0 bytes is too little"}}},
		{"section of the wrong shape", base + lines("log: debug"),
			[]want{{10, "log", "is a single value, but a mapping of keys belongs here"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(tt.src, nil)
			checkProblems(t, err, tt.want)
		})
	}
}
