package config

import (
	"strings"
	"testing"

	"github.com/sensorgate/sensorgate/gateway/influx"
)

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"TOKEN": "s3cr3t", "EMPTY": "", "PORT": "1883"})
	tests := []struct {
		in, want string
		err      string // substring of the error; empty for none
	}{
		{"plain text", "plain text", ""},
		{"${TOKEN}", "s3cr3t", ""},
		{"Bearer ${TOKEN}!", "Bearer s3cr3t!", ""},
		{"tcp://h:${PORT}", "tcp://h:1883", ""},
		{"${TOKEN}${TOKEN}", "s3cr3ts3cr3t", ""},
		{"${EMPTY}", "", ""},
		{"${MISSING:-fallback}", "fallback", ""},
		{"${EMPTY:-fallback}", "fallback", ""},
		{"${TOKEN:-fallback}", "s3cr3t", ""},
		{"${MISSING:-}", "", ""},
		{"${MISSING:-a:b $c}", "a:b $c", ""},
		{"pa$$word", "pa$word", ""},
		{"$${TOKEN}", "${TOKEN}", ""},
		{"$$$$", "$$", ""},
		{"costs 5$", "costs 5$", ""},
		{"a$-b$1", "a$-b$1", ""},
		{"${MISSING}", "", "environment variable MISSING is not set: set it, or write ${MISSING:-default}"},
		{"x ${TOKEN} ${MISSING}", "", "environment variable MISSING is not set"},
		{"$TOKEN", "", "$TOKEN: write ${TOKEN} to use the environment variable, or $$ for a literal $"},
		{"${TOKEN", "", `"${TOKEN" has no closing }`},
		{"${}", "", "${} is not a variable reference"},
		{"${1X}", "", "${1X} is not a variable reference"},
		{"${A-B}", "", "${A-B} is not a variable reference"},
		{"${A:b}", "", "${A:b} is not a variable reference"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := expand(tt.in, env)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("expand(%q) error = %v, want …%s…", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestExpandInFile checks expansion on the parsed tree: the value's YAML
// type after expansion, secrets that look like YAML, and line numbers.
func TestExpandInFile(t *testing.T) {
	env := map[string]string{
		"PASS":   "a: b # not a comment\n- c",
		"QOS":    "0",
		"BROKER": "tcp://10.0.0.1:1883",
		"NULLY":  "~",
		"EMPTY":  "",
		"NUM":    "0123",
	}
	src := base + lines(
		"    username: ${NULLY}",
		"    password: ${PASS}",
		"    qos: ${QOS}",
		"    client_id: ${NUM}",
	)
	src = edit(src, "    broker: tcp://127.0.0.1:1883", "    broker: ${BROKER}")
	src = edit(src, "  bucket: sensors", "  bucket: sensors", `  batch_size: ${EMPTY}`)
	cfg, err := parseString(src, env)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sources[0].MQTT
	if s.Password != env["PASS"] {
		t.Errorf("password = %q; a secret with YAML syntax must stay one value", s.Password)
	}
	if s.Username != "~" {
		t.Errorf("username = %q; ~ from the environment is text, not null", s.Username)
	}
	if s.QoS == nil || *s.QoS != 0 {
		t.Errorf("qos = %v; an unquoted ${QOS} must be typed after expansion", s.QoS)
	}
	if s.ClientID != "0123" {
		t.Errorf("client_id = %q; want the text as given", s.ClientID)
	}
	if s.Broker != env["BROKER"] {
		t.Errorf("broker = %q", s.Broker)
	}
	if cfg.Influx.BatchSize != influx.DefaultBatchSize {
		t.Errorf("batch_size = %d; a value expanding to nothing must take the default", cfg.Influx.BatchSize)
	}
}

func TestExpandProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		env  map[string]string
		want []want
	}{
		{"unset variable names line and variable",
			base + lines("    username: city", "    password: ${MQTT_PASSWORD}"), nil,
			[]want{{11, "sources[0].password", "environment variable MQTT_PASSWORD is not set"}}},
		{"unset in a list item",
			edit(base, `    topics: ["application/+/device/+/event/up"]`, `    topics:`, `      - ok/+`, `      - ${TOPIC}`), nil,
			[]want{{11, "sources[0].topics[1]", "environment variable TOPIC is not set"}}},
		{"several at once",
			edit(base, "  url: http://127.0.0.1:8086", "  url: ${INFLUX_URL}", "  token: ${INFLUX_TOKEN}"), nil,
			[]want{
				{2, "influx.url", "environment variable INFLUX_URL is not set"},
				{3, "influx.token", "environment variable INFLUX_TOKEN is not set"},
			}},
		{"quoted value stays text",
			base + lines(`    qos: "${QOS}"`), map[string]string{"QOS": "1"},
			[]want{{10, "sources[0].qos", `"1" is not a whole number`}}},
		{"keys are not expanded",
			base + lines("    ${KEY}: x"), map[string]string{"KEY": "username"},
			[]want{{10, "sources[0].${KEY}", `unknown key "${KEY}"`}}},
		{"comments are not expanded",
			base + lines("    # password: ${NOT_SET}"), nil, nil},
		{"missing brace",
			base + lines("    client_id: sensorgate-$HOSTNAME"), nil,
			[]want{{10, "sources[0].client_id", "$HOSTNAME: write ${HOSTNAME}"}}},
		{"escaped",
			base + lines("    username: u", "    password: pa$$word"), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(tt.src, tt.env)
			checkProblems(t, err, tt.want)
		})
	}
}
