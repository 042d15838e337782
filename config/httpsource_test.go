package config

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sensorgate/sensorgate/gateway/mqtt"
	"github.com/sensorgate/sensorgate/gateway/webhook"
)

// hookBase is base with a second, http source from line 10 on.
const hookBase = base + `  - name: hook
    type: http
    format: tts-v3
    listen: "127.0.0.1:8090"
    auth: {header: X-Secret, value: "${HOOK_SECRET}"}
`

func TestHTTPSource(t *testing.T) {
	cfg, err := parseString(hookBase, map[string]string{"HOOK_SECRET": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Sources[1].HTTP
	want := webhook.Config{Name: "hook", Type: "http", Format: mqtt.FormatTTSV3, Listen: "127.0.0.1:8090", Path: "/",
		Auth: webhook.Auth{Header: "X-Secret", Value: "s3cret"}, MaxBodyBytes: webhook.DefaultMaxBodyBytes,
		MaxInFlight: webhook.DefaultMaxInFlight, DrainTimeout: webhook.DefaultDrainTimeout, RetryAfter: 10 * time.Second,
		UnknownDevices: mqtt.UnknownAccept}
	if h == nil || cfg.Sources[1].Name() != "hook" || h.Map != nil || h.JSON != want.JSON {
		t.Fatalf("http source %+v", h)
	}
	if !reflect.DeepEqual(*h, want) {
		t.Fatalf("http source\n got %+v\nwant %+v", *h, want)
	}
	if err := cfg.Sources[1].validateInPackage(); err != nil {
		t.Fatal(err)
	}
	cfg, err = parseString(edit(hookBase, `    auth: {header: X-Secret, value: "${HOOK_SECRET}"}`, "    auth: none"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Sources[1].HTTP.Auth; !a.None || a.Method() != "none" {
		t.Fatalf("auth: none read as %+v", a)
	}
	if err := cfg.Sources[1].validateInPackage(); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPSourceProblems(t *testing.T) {
	env := map[string]string{"HOOK_SECRET": "s3cret"}
	authLine := `    auth: {header: X-Secret, value: "${HOOK_SECRET}"}`
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []want
	}{
		{"no auth", edit(hookBase, authLine), env,
			[]want{{10, "sources[1].auth", "missing: anyone who can reach the port could write data"}}},
		{"auth some other word", edit(hookBase, authLine, "    auth: off"), env,
			[]want{{14, "sources[1].auth", "write auth: none, or a mapping"}}},
		{"two methods", edit(hookBase, authLine, "    auth: {bearer_token: t, username: u, password: p}"), env,
			[]want{{14, "sources[1].auth", "set exactly one of header and value"}}},
		{"secret from an unset variable", hookBase, map[string]string{},
			[]want{{14, "sources[1].auth.value", "HOOK_SECRET is not set"}}},
		{"secret empty", hookBase, map[string]string{"HOOK_SECRET": ""},
			[]want{{14, "sources[1].auth.value", "missing or empty"}}},
		{"Authorization as the secret header", edit(hookBase, authLine, "    auth: {header: Authorization, value: x}"), env,
			[]want{{14, "sources[1].auth.header", "use those keys, or another header name"}}},
		{"basic without password", edit(hookBase, authLine, "    auth: {username: tts}"), env,
			[]want{{14, "sources[1].auth.password", "missing or empty"}}},
		{"unknown auth key", edit(hookBase, authLine, "    auth: {token: x}"), env,
			[]want{{14, "sources[1].auth.token", `unknown key "token"`}, {14, "sources[1].auth", "missing"}}},
		{"format of raw frames", edit(hookBase, "    format: tts-v3", "    format: gateway-bridge"), env,
			[]want{{12, "sources[1].format", `"gateway-bridge" is not a format an HTTP source reads`}}},
		{"listen and path", edit(edit(hookBase, `    listen: "127.0.0.1:8090"`, `    listen: "8090"`), "    format: tts-v3", "    format: tts-v3", "    path: tts"), env,
			[]want{{13, "sources[1].path", "a URL path starts with /"}, {14, "sources[1].listen", `"8090" is not host:port`}}},
		{"same port twice", hookBase + lines("  - name: hook2", "    type: http", "    format: chirpstack-v4", `    listen: "127.0.0.1:8090"`, "    auth: none"), env,
			[]want{{18, "sources[2].listen", `"127.0.0.1:8090" is also where sources[1] listens`}}},
		{"udp and http on one port number", hookBase + lines("  - name: gw", "    type: semtech-udp", `    listen: "127.0.0.1:8090"`), env, nil},
		{"the API's port", edit(hookBase, `    listen: "127.0.0.1:8090"`, `    listen: "127.0.0.1:8080"`) + "http: {listen: \"127.0.0.1:8080\"}\n", env,
			[]want{{13, "sources[1].listen", "is also http.listen"}}},
		{"numbers and durations", hookBase + lines("    max_body_bytes: 0", "    max_in_flight: -1", "    drain_timeout: 0s", "    retry_after: -1s"), env,
			[]want{
				{15, "sources[1].max_body_bytes", "0: must be a whole number of at least 1 (default 1048576)"},
				{16, "sources[1].max_in_flight", "-1: must be a whole number of at least 1 (default 64)"},
				{17, "sources[1].drain_timeout", "0 is not allowed"},
				{18, "sources[1].retry_after", "-1s is negative"},
			}},
		{"tls half", hookBase + lines("    tls_cert: /x.pem"), env,
			[]want{{15, "sources[1].tls_cert", "needs both tls_cert and tls_key"}}},
		{"json device from a topic", edit(hookBase, "    format: tts-v3", "    format: json", "    json: {device_id: \"topic:1\"}"), env,
			[]want{{13, "sources[1].json.device_id", "an HTTP request has no topic"}}},
		{"broker key in an http source", hookBase + lines("    broker: tcp://h:1883"), env,
			[]want{{15, "sources[1].broker", `key "broker" does not apply to this source (type http): it is a key of mqtt sources`}}},
		{"type guessed", edit(hookBase, "    type: http"), env,
			[]want{{10, "sources[1].type", "listen with auth, path or format suggests http"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(tt.src, tt.env)
			checkProblems(t, err, tt.want)
		})
	}
}

// TestHTTPSourceSecretsWarned: a config readable by others with a webhook
// secret written into it is warned about, like the other secrets.
func TestHTTPSourceSecretsWarned(t *testing.T) {
	keys := literalSecrets([]byte(base + lines("  - name: hook", "    type: http", "    auth: {header: X, value: literal}",
		"  - name: hook2", "    type: http", "    auth: {bearer_token: \"${TOKEN}\"}", "  - name: hook3", "    type: http", "    auth: {username: u, password: pw}")))
	for _, k := range []string{"sources[1].auth.value", "sources[3].auth.password"} {
		if !slices.Contains(keys, k) {
			t.Errorf("literal secrets %v lack %s", keys, k)
		}
	}
	if slices.Contains(keys, "sources[2].auth.bearer_token") {
		t.Errorf("a ${NAME} reference counted as a literal secret: %v", keys)
	}
}
