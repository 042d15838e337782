package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway/influx"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sensorgate.yaml")
	if err := os.WriteFile(path, []byte(base+lines("    password: ${SG_TEST_PASSWORD}", "    username: u")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SG_TEST_PASSWORD", "from-env")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sources[0].MQTT.Password; got != "from-env" {
		t.Errorf("password = %q, want it from the environment", got)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping fs.ErrNotExist", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(edit(base, "    format: chirpstack-v4", "    format: chirpstak-v4")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	want := bad + `:7: sources[0].format: "chirpstak-v4" is not a feed format: use chirpstack-v4, chirpstack-v3, tts-v3, json or gateway-bridge`
	if err == nil || err.Error() != want {
		t.Errorf("Load(bad) = %v\nwant %s", err, want)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []want
	}{
		{"top level with suggestion", base + lines("influxdb:", "  url: x"),
			[]want{{10, "influxdb", `unknown key "influxdb": did you mean "influx"?`}}},
		{"top level without suggestion", lines("metrics: true") + base,
			[]want{{1, "metrics", `unknown key "metrics": the keys here are log, http, state_dir, registry, sources, influx, spool, devices, gateways, decoders`}}},
		{"in a source", base + lines("    qso: 0"),
			[]want{{10, "sources[0].qso", `unknown key "qso": did you mean "qos"?`}}},
		{"in a second source", base + second + lines("    clientid: x"),
			[]want{{15, "sources[1].clientid", `did you mean "client_id"?`}}},
		{"in json", lines(
			"influx: {url: 'http://i:8086', bucket: b}", // 1
			"sources:",                 // 2
			"  - name: j",              // 3
			"    type: mqtt",           // 4
			"    format: json",         // 5
			"    broker: tcp://h:1883", // 6
			"    topics: [s/+/d]",      // 7
			"    json:",                // 8
			"      device_id: topic:1", // 9
			"      timestamp: ts",      // 10
		), []want{{10, "sources[0].json.timestamp", `unknown key "timestamp"`}}},
		{"in a map entry", base + lines("    map:", "      - key: t", "        quantiy: air.temperature"),
			[]want{
				{11, "sources[0].map[0].quantity", "missing"},
				{12, "sources[0].map[0].quantiy", `did you mean "quantity"?`},
			}},
		{"in influx, flow style", edit(base, "  bucket: sensors", "  bucket: sensors", "  retry: {max: 3}"),
			[]want{{4, "influx.retry", `unknown key "retry"`}}},
		{"unknown subtree is not searched further", base + lines("extra:", "  also: {unknown: 1}"),
			[]want{{10, "extra", `unknown key "extra"`}}},
		{"merge keys are allowed", lines(
			"x-broker: &b",
			"  type: mqtt",
		) + base, []want{{1, "x-broker", `unknown key "x-broker"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(tt.src, nil)
			checkProblems(t, err, tt.want)
		})
	}
}

func TestMergeKey(t *testing.T) {
	src := lines(
		"influx: {url: 'http://i:8086', bucket: b}",
		"sources:",
		"  - &cs",
		"    name: a",
		"    type: mqtt",
		"    format: chirpstack-v4",
		"    broker: tcp://h:1883",
		"    topics: [x/+]",
		"  - <<: *cs",
		"    name: b",
	)
	cfg, err := parseString(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Sources[1].MQTT; got.Name != "b" || got.Broker != "tcp://h:1883" || got.ClientID != "sensorgate-b" {
		t.Errorf("merged source = %+v", got)
	}
}

// TestManyProblems checks that one run reports everything, in line order,
// and the exact text an operator sees.
func TestManyProblems(t *testing.T) {
	src := lines(
		"log:",                                 // 1
		"  level: loud",                        // 2
		"sources:",                             // 3
		"  - name: a",                          // 4
		"    type: mqtt",                       // 5
		"    format: chirpstak-v4",             // 6
		"    topics: [x/+]",                    // 7
		"    qos: 5",                           // 8
		"    password: ${NOT_SET}",             // 9
		"  - name: a",                          // 10
		"    type: mqtt",                       // 11
		"    format: json",                     // 12
		"    broker: tcp://h:1883",             // 13
		"    topics: [x/+]",                    // 14
		"    json: {device_id: topic:1}",       // 15
		"    map:",                             // 16
		"      - {key: t, quantity: air.temp}", // 17
		"influx:",                              // 18
		"  url: http://127.0.0.1:8086",         // 19
		"  batch_size: 0",                      // 20
		"  bucekt: sensors",                    // 21
	)
	_, err := parseString(src, nil)
	wantText := strings.Join([]string{
		`test.yaml:2: log.level: "loud" is not a log level: use debug, info, warn or error`,
		`test.yaml:4: sources[0].broker: missing: give the broker's URL, e.g. tcp://127.0.0.1:1883`,
		`test.yaml:6: sources[0].format: "chirpstak-v4" is not a feed format: use chirpstack-v4, chirpstack-v3, tts-v3, json or gateway-bridge`,
		`test.yaml:8: sources[0].qos: 5 is not an MQTT QoS: use 0, 1 or 2 (default 1; The Things Stack offers 0 only)`,
		`test.yaml:9: sources[0].password: environment variable NOT_SET is not set: set it, or write ${NOT_SET:-default}`,
		`test.yaml:10: sources[1].name: "a" is also the name of sources[0]: give each source its own name`,
		`test.yaml:17: sources[1].map[0].quantity: "air.temp" is not a catalogue quantity: did you mean air.temperature?`,
		`test.yaml:18: influx.bucket: missing: name the bucket to write to (database/retention-policy on InfluxDB 1.8, e.g. sensors/autogen)`,
		`test.yaml:20: influx.batch_size: 0: must be a whole number of at least 1 (default 5000)`,
		`test.yaml:21: influx.bucekt: unknown key "bucekt": did you mean "bucket"?`,
	}, "\n")
	if err == nil || err.Error() != wantText {
		t.Fatalf("got:\n%v\nwant:\n%s", err, wantText)
	}
}

func TestSyntaxAndShape(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []want
	}{
		{"unclosed flow sequence", lines("sources: [", "influx: {}"), []want{{2, "", "YAML syntax: did not find expected ',' or ']'"}}},
		{"bad indentation", lines("influx:", "  url: x", " bucket: b"), []want{{2, "", "YAML syntax: did not find expected key"}}},
		{"tab", lines("influx:", "\turl: x"), []want{{2, "", "YAML syntax: found character that cannot start any token"}}},
		{"two documents", base + lines("---", "log: {}"), []want{{10, "", "a second YAML document: the config is one document; remove the extra ---"}}},
		{"a list", lines("- a", "- b"), []want{{1, "", "the config must be a mapping of sections"}}},
		{"a scalar", lines("hello"), []want{{1, "", "the config must be a mapping of sections"}}},
		{"empty file", "", []want{{0, "sources", "no source"}, {0, "influx.url", "missing"}, {0, "influx.bucket", "missing"}}},
		{"comments only", lines("# nothing yet", "---"), []want{{0, "sources", "no source"}, {0, "influx.url", "missing"}, {0, "influx.bucket", "missing"}}},
		{"duplicate key", base + lines("log: {level: info}", "log: {level: debug}"),
			[]want{{11, "log", `key "log" is written twice (first on line 10): keep one`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(tt.src, nil)
			checkProblems(t, err, tt.want)
		})
	}
}

func TestDefaults(t *testing.T) {
	src := base + second + lines(
		"  - name: j",                    // 15
		"    type: mqtt",                 // 16
		"    format: json",               // 17
		"    broker: tcp://h:1883",       // 18
		"    topics: [x/+]",              // 19
		"    json: {device_id: topic:1}", // 20
		"  - name: t",                    // 21
		"    type: mqtt",                 // 22
		"    format: tts-v3",             // 23
		"    broker: ssl://h:8883",       // 24
		"    topics: [x/+]",              // 25
		"    qos: 0",                     // 26
		"    client_id: fixed",           // 27
		"    unknown_devices: reject",    // 28
		"    json: ~",                    // 29
		"  - name: j2",                   // 30
		"    type: mqtt",                 // 31
		"    format: json",               // 32
		"    broker: tcp://h:1883",       // 33
		"    topics: [x/+]",              // 34
		"    json: {device_id: id, time: ts}",
	)
	cfg, err := parseString(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("log.level", cfg.Log.Level, "info")
	check("log.format", cfg.Log.Format, "console")
	check("http.listen", cfg.HTTP.Listen, "127.0.0.1:8080")
	check("http.token", cfg.HTTP.Token, "")
	check("state_dir", cfg.StateDir, "/var/lib/sensorgate")
	check("devices.import", cfg.Devices.Import, "")
	check("len(devices.tags)", len(cfg.Devices.Tags), 0)
	check("decoders.timeout", cfg.Decoders.Timeout, 100*time.Millisecond)
	check("influx.batch_size", cfg.Influx.BatchSize, 5000)
	check("influx.batch_bytes", cfg.Influx.BatchBytes, 512<<10)
	check("influx.flush_interval", cfg.Influx.FlushInterval, 100*time.Millisecond)
	check("influx.timeout", cfg.Influx.Timeout, 10*time.Second)
	check("influx.gzip", cfg.Influx.Gzip, influx.GzipAuto)
	check("influx.max_in_flight", cfg.Influx.MaxInFlight, 2)

	type srcDefaults struct {
		clientID, unknown, timeFormat string
		qos, maxInFlight              int
		clean                         bool
		reconnectMax                  time.Duration
	}
	wants := []srcDefaults{
		{"sensorgate-cs", "accept", "", 1, 128, false, time.Minute},
		{"sensorgate-b", "accept", "", 1, 128, false, time.Minute},
		{"sensorgate-j", "reject", "", 1, 128, false, time.Minute},
		{"fixed", "reject", "", 0, 128, false, time.Minute},
		{"sensorgate-j2", "reject", "rfc3339", 1, 128, false, time.Minute},
	}
	for i, w := range wants {
		s := cfg.Sources[i].MQTT
		got := srcDefaults{s.ClientID, s.UnknownDevices, s.JSON.TimeFormat, *s.QoS, s.MaxInFlight, s.Clean, s.ReconnectMax}
		if got != w {
			t.Errorf("sources[%d] defaults = %+v, want %+v", i, got, w)
		}
	}
}

func TestExplicitValuesKept(t *testing.T) {
	src := edit(base, "  bucket: sensors", "  bucket: sensors", "  gzip: never", "  batch_size: 10", "  timeout: 2s", "  flush_interval:") +
		lines("    clean_session: true", "decoders: {timeout: 1s}", "log: {level: debug, format: json}")
	cfg, err := parseString(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := cfg.Influx
	if in.Gzip != influx.GzipNever || in.BatchSize != 10 || in.Timeout != 2*time.Second || in.FlushInterval != influx.DefaultFlushInterval {
		t.Errorf("influx = %+v (flush_interval with no value takes the default)", in)
	}
	if !cfg.Sources[0].MQTT.Clean || cfg.Decoders.Timeout != time.Second || cfg.Log != (LogConfig{"debug", "json"}) {
		t.Errorf("config = %+v", cfg)
	}
}

// TestInCode checks SetDefaults and Validate for a Config built without a
// file: same rules, no lines, no file name.
func TestInCode(t *testing.T) {
	var c Config
	c.SetDefaults()
	err := c.Validate()
	want := "sources: no source: add at least one (see the sources in example.yaml)\n" +
		"influx.url: missing: give InfluxDB's URL, e.g. http://127.0.0.1:8086\n" +
		"influx.bucket: missing: name the bucket to write to (database/retention-policy on InfluxDB 1.8, e.g. sensors/autogen)"
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v\nwant %s", err, want)
	}
	cfg, err := parseString(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a loaded config must validate in code too: %v", err)
	}
}

func TestProblemsError(t *testing.T) {
	p := &Problems{File: "/etc/sensorgate.yaml", List: []Problem{
		{Line: 0, Path: "influx.url", Msg: "missing"},
		{Line: 3, Path: "", Msg: "YAML syntax: oops"},
		{Line: 7, Path: "sources[1].format", Msg: `"x" is not a feed format`},
	}}
	want := "/etc/sensorgate.yaml: influx.url: missing\n" +
		"/etc/sensorgate.yaml:3: YAML syntax: oops\n" +
		`/etc/sensorgate.yaml:7: sources[1].format: "x" is not a feed format`
	if got := p.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

// TestInfluxGzipValues: the three words, and the booleans earlier versions
// took, are accepted and kept as written (the influx package resolves
// them).
func TestInfluxGzipValues(t *testing.T) {
	for _, v := range []string{"auto", "always", "never", "true", "false"} {
		t.Run(v, func(t *testing.T) {
			cfg, err := parseString(edit(base, "  bucket: sensors", "  bucket: sensors", "  gzip: "+v), nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Influx.Gzip != v {
				t.Errorf("influx.gzip = %q, want %q", cfg.Influx.Gzip, v)
			}
		})
	}
}
