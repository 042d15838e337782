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
		// No token: the daemon generates one, so any listen address will do.
		{"listen every interface without token", base + lines("http:", "  listen: '0.0.0.0:8080'"), nil},
		{"token with a leading space", base + lines("http:", `  token: " s3cret"`),
			[]want{{11, "http.token", "has a space, a line break, a control or a non-ASCII character at byte 0"}}},
		{"token with a line break", base + lines("http:", `  token: "s3cret\n"`),
			[]want{{11, "http.token", "at byte 6"}}},
		{"token inner space", base + lines("http:", `  token: "two words"`),
			[]want{{11, "http.token", "at byte 3"}}},
		{"allowed hosts", base + lines("http:", "  allowed_hosts: [sensors.example.org, gw-1, 192.168.1.20, '::1', '[fe80::1]', 'x.example.']"), nil},
		{"allowed host with port", base + lines("http:", "  allowed_hosts: ['sensors.example.org:8080']"),
			[]want{{11, "http.allowed_hosts[0]", `has a port (8080): leave it out`}}},
		{"allowed host URL", base + lines("http:", "  allowed_hosts: ['https://sensors.example.org']"),
			[]want{{11, "http.allowed_hosts[0]", "is a URL"}}},
		{"allowed host wildcard", base + lines("http:", "  allowed_hosts: ['*.example.org']"),
			[]want{{11, "http.allowed_hosts[0]", "wildcards are not supported"}}},
		{"allowed host empty", base + lines("http:", "  allowed_hosts: ['']"),
			[]want{{11, "http.allowed_hosts[0]", "is empty"}}},
		{"allowed host not a name", base + lines("http:", "  allowed_hosts: ['a b', 'a..b']"),
			[]want{{11, "http.allowed_hosts[0]", "is not a host name"}, {11, "http.allowed_hosts[1]", "is not a host name"}}},
		{"tls cert without key", base + lines("http:", "  tls_cert: /etc/c.pem"),
			[]want{{10, "http.tls_key", "HTTPS needs both"}}},
		{"max body zero", base + lines("http:", "  max_body_bytes: 0"),
			[]want{{11, "http.max_body_bytes", "at least 1"}}},
		{"silent factor below 1", base + lines("devices:", "  silent_factor: 0.5"),
			[]want{{11, "devices.silent_factor", "at least 1"}}},
		{"health interval zero", base + lines("devices:", "  health_interval: 0s"),
			[]want{{11, "devices.health_interval", "0 is not allowed"}}},
		{"state bounds zero", base + lines("devices:", "  max_unknown: 0", "  unknown_max_series: -1", "  unknown_series_per_minute: 0", "  state_save_interval: 0s"),
			[]want{{11, "devices.max_unknown", "at least 1"}, {12, "devices.unknown_max_series", "at least 1"},
				{13, "devices.unknown_series_per_minute", "at least 1"}, {14, "devices.state_save_interval", "0 is not allowed"}}},
		{"state_dir empty takes default", base + lines(`state_dir: ""`), nil},

		// registry
		{"registry postgres", base + lines("registry:", "  driver: postgres", "  dsn: postgres://sg:pw@db:5432/sg"), nil},
		{"registry postgres key=value dsn", base + lines("registry:", "  driver: postgres", "  dsn: host=db dbname=sg user=sg"), nil},
		{"registry driver unknown", base + lines("registry:", "  driver: mysql"),
			[]want{{11, "registry.driver", `"mysql" is not a registry driver: use sqlite or postgres`}}},
		{"registry postgres without dsn", base + lines("registry:", "  driver: postgres"),
			[]want{{10, "registry.dsn", "missing: driver postgres needs a connection string"}}},
		{"registry dsn malformed", base + lines("registry:", "  driver: postgres", "  dsn: 'postgres://sg:s3cret@db:99999999/sg'"),
			[]want{{12, "registry.dsn", "not a PostgreSQL connection string"}}},
		{"registry dsn with sqlite", base + lines("registry:", "  dsn: postgres://db/sg"),
			[]want{{11, "registry.dsn", "only used with driver postgres"}}},

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
		{"broker with credentials", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: tcp://sensorgate:hunter2@127.0.0.1:1883"),
			[]want{{8, "sources[0].broker", `"tcp://sensorgate:xxxxx@127.0.0.1:1883" carries credentials: remove user:password@ and set the source's username and password keys`}}},
		{"broker with credentials, not a URL", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: tcp://us%zz:hunter2@127.0.0.1:1883"),
			[]want{{8, "sources[0].broker", `"tcp://xxxxx@127.0.0.1:1883" is not a broker URL`}}},
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
		// shared subscriptions
		{"literal share topic", edit(base, `    topics: ["application/+/device/+/event/up"]`, `    topics: ["$share/sg/application/+/device/+/event/up", "$SYS/broker/uptime"]`), nil},
		{"share group", base + lines("    share_group: sg"), nil},
		{"share group with slash", base + lines("    share_group: a/b"),
			[]want{{10, "sources[0].share_group", `"a/b" must not contain /, +, # or NUL`}}},
		{"share group and share topic", edit(base, `    topics: ["application/+/device/+/event/up"]`, `    topics: ["$share/sg/a/+"]`) + lines("    share_group: sg"),
			[]want{{9, "sources[0].topics[0]", "is a shared subscription already"}}},
		{"dollar word in topic", edit(base, `    topics: ["application/+/device/+/event/up"]`, `    topics: ["$shared/sg/a/+"]`),
			[]want{{9, "sources[0].topics[0]", "a shared subscription is written $share/GROUP/topic"}}},

		// influx version 1
		{"influx v1", edit(base, "  bucket: sensors", "  version: 1", "  database: sensors", "  retention_policy: autogen", "  username: sg", "  password: pw"), nil},
		{"influx v1 without database", edit(base, "  bucket: sensors", "  version: 1"),
			[]want{{1, "influx.database", "missing: version 1 writes to a database"}}},
		{"influx v1 with bucket", edit(base, "  bucket: sensors", "  version: 1", "  database: sensors", "  bucket: sensors"),
			[]want{{5, "influx.bucket", "is a version 2 key"}}},
		{"influx v2 with username", edit(base, "  bucket: sensors", "  bucket: sensors", "  username: sg"),
			[]want{{4, "influx.username", "is a version 1 key"}}},
		{"influx version 3", edit(base, "  bucket: sensors", "  bucket: sensors", "  version: 3"),
			[]want{{4, "influx.version", "3 is not a write API version"}}},
		{"influx create_database false", edit(base, "  bucket: sensors", "  bucket: sensors", "  create_database: false"), nil},
		{"influx create_database word", edit(base, "  bucket: sensors", "  bucket: sensors", "  create_database: maybe"),
			[]want{{4, "influx.create_database", `"maybe" is not true or false`}}},

		// tls blocks
		{"mqtt tls on tcp", base + lines("    tls: {ca_file: validate_test.go}"),
			[]want{{10, "sources[0].tls", `set, but "tcp://127.0.0.1:1883" does not use TLS`}}},
		{"mqtt tls", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: ssl://127.0.0.1:8883") + lines("    tls: {ca_file: validate_test.go, cert_file: validate_test.go, key_file: validate_test.go, server_name: broker.city}"), nil},
		{"mqtt tls key missing", edit(base, "    broker: tcp://127.0.0.1:1883", "    broker: ssl://127.0.0.1:8883") + lines("    tls:", "      cert_file: validate_test.go"),
			[]want{{10, "sources[0].tls.key_file", "missing: a client certificate needs both"}}},
		{"influx tls file missing", edit(base, "  url: http://127.0.0.1:8086", "  url: https://127.0.0.1:8086", "  tls:", "    ca_file: /nonexistent/ca.pem"),
			[]want{{4, "influx.tls.ca_file", "no such file"}}},
		{"influx tls on http", edit(base, "  bucket: sensors", "  bucket: sensors", "  tls: {insecure_skip_verify: true}"),
			[]want{{4, "influx.tls", "does not use TLS"}}},
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
